"""``--checkpoint FILE``: where a long listing has got to, saved after every page (S6).

After each page is written to stdout (and flushed), the file is replaced atomically (a
temporary file in the same directory, ``fsync``, ``os.replace``) with the cursor of the next
page, how many objects have been written, the command and its parameters, and the output
settings. ``--resume FILE`` reads it back and continues with the next page: the objects
before it were written, none after it were, so nothing is repeated and nothing missed.

One run at a time: a run with ``--checkpoint`` or ``--resume`` holds ``FILE.lock`` (an
``flock`` lock, with its process id in it) from before it reads the checkpoint until it
ends; a second run on the same file stops at once (exit 1) naming that process, instead of
fetching and writing the same pages again.

The file holds no secret (the cursor is bound to the signed-in user by the server, and the
proxy URL, which may carry a password, is not kept); it is written 0600 all the same, as
the parameters describe what an administrator was looking at.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bastion.client.errors import ClientError, UsageError
from bastion.client.files import LockHeld, run_lock, write_atomically

FORMAT = 1
_WHICH = "--checkpoint names a new file (or a finished listing's); --resume, one it wrote."


@dataclass
class Checkpoint:
    path: Path
    service: str
    command: str
    parameters: dict[str, Any]
    page_size: int | None
    issuer: str
    profile: str | None
    #: the cursor of the next page to fetch: None before the first page, or once complete
    cursor: str | None = None
    #: objects written to stdout so far, by every run of this listing
    written: int = 0
    pages: int = 0
    complete: bool = False
    output: dict[str, Any] = field(default_factory=dict)
    #: the command line of the first run (for people; resuming uses the fields above)
    argv: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("path")
        return {"bastion_checkpoint": FORMAT, "updated_at": time.time(), **body}

    def save(self) -> None:
        data = (json.dumps(self.to_json(), indent=2) + "\n").encode()
        try:
            write_atomically(self.path, data)
        except OSError as exc:
            raise ClientError(
                f"cannot save the checkpoint {self.path}: {exc.strerror or exc}.",
                hint="Give --checkpoint a file in a directory you can write to.",
            ) from None


def load(path: Path) -> Checkpoint:
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(
            f"there is no checkpoint file {path}.", hint="Give the file named by --checkpoint."
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a checkpoint file ({exc}).", hint=_WHICH) from None
    if not isinstance(raw, dict) or raw.get("bastion_checkpoint") != FORMAT:
        raise UsageError(
            f"{path} is not a Bastion checkpoint file (or one of another version).", hint=_WHICH
        )
    try:
        return Checkpoint(
            path=path,
            service=str(raw["service"]),
            command=str(raw["command"]),
            parameters=dict(raw.get("parameters") or {}),
            page_size=raw.get("page_size"),
            issuer=str(raw["issuer"]),
            profile=raw.get("profile"),
            cursor=raw.get("cursor"),
            written=int(raw.get("written") or 0),
            pages=int(raw.get("pages") or 0),
            complete=bool(raw.get("complete")),
            output=dict(raw.get("output") or {}),
            argv=[str(a) for a in raw.get("argv") or []],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path} is a damaged checkpoint file: {exc}.") from None


@contextlib.contextmanager
def one_run(path: Path) -> Iterator[None]:
    """Hold the checkpoint ``path`` for this run (see the module's documentation)."""
    lock = path.with_name(path.name + ".lock")
    try:
        with run_lock(lock):
            yield
    except LockHeld as held:
        who = f"process {held.pid}" if held.pid else "another process"
        raise ClientError(
            f"the listing saved in {path} is being run by {who} already.",
            hint=f"Wait for it to finish (or stop it), then resume with --resume {path}.",
        ) from None
    except OSError as exc:
        raise ClientError(
            f"cannot lock the checkpoint {path}: {exc.strerror or exc} ({lock}).",
            hint="Give --checkpoint a file in a directory you can write to.",
        ) from None


def peek_profile(path: str) -> str | None:
    """The profile a checkpoint was made with (to connect before the parser is built)."""
    try:
        raw = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    profile = raw.get("profile") if isinstance(raw, dict) else None
    return str(profile) if profile else None


def stdout_offset() -> int | None:
    """Where stdout is in the file it writes to, when it is a regular file."""
    try:
        import stat

        if not stat.S_ISREG(os.fstat(1).st_mode):
            return None
        return os.lseek(1, 0, os.SEEK_CUR)
    except OSError:
        return None
