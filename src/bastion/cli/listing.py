"""Running a listing command: one page, every page (``--all``), checkpoints and resuming (S6).

Without ``--all`` a listing prints its first page (``--page-size`` objects, 100 by default)
and says on stderr how to go on when there is more. With ``--all`` it streams every page:
each is written (and flushed) before the next is fetched, so memory does not grow with the
tenant, and with ``--checkpoint FILE`` the file is saved after each page.

An interruption (the server unreachable or restarting, the sign-in revoked or ended, Ctrl-C,
SIGTERM) closes the output so it stays valid (a JSON array gets its closing bracket), says
on stderr how many objects were written and the exact command that resumes, and exits 5.
Ctrl-C and SIGTERM are held back while a page is being written and its checkpoint saved, so
a page is either wholly written and recorded, or not written at all.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.cli import checkpoint as checkpoints
from bastion.cli import progress as progresses
from bastion.cli.output import Writer, pick, query
from bastion.client.errors import (
    ClientError,
    ListingIncomplete,
    NetworkError,
    ServerError,
    SignInRequired,
    UsageError,
)

if TYPE_CHECKING:
    from bastion.client.catalog import CommandInfo
    from bastion.client.connection import Connection
    from bastion.client.paging import Listing

#: errors that interrupt a listing rather than refuse it: resuming later can succeed
INTERRUPTIONS = (NetworkError, ServerError, SignInRequired)


@dataclass
class ListingOptions:
    page_size: int | None = None
    cursor: str | None = None
    all: bool = False
    #: stop after this many objects (the shell's -ResultSize)
    limit: int | None = None
    checkpoint: Path | None = None
    resumed: checkpoints.Checkpoint | None = None
    #: the command as typed, without --cursor and --all (continued with --cursor)
    command: list[str] = field(default_factory=lambda: ["bastion"])
    #: the command that resumes from a checkpoint, without its --resume part
    resume_command: list[str] = field(default_factory=lambda: ["bastion"])
    #: the command line as typed (recorded in the checkpoint)
    argv: list[str] = field(default_factory=list)
    #: what to say when there is more than was shown (the shell's own words); given the
    #: cursor that continues
    more: Callable[[str | None], str] | None = None


class Interrupted(Exception):
    """SIGTERM during a listing."""


@contextlib.contextmanager
def _held_signals() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for the block; deliver them after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            raise KeyboardInterrupt if pending[0] == signal.SIGINT else Interrupted()


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(
    conn: Connection,
    info: CommandInfo,
    params: dict[str, Any],
    writer: Writer,
    options: ListingOptions,
    *,
    expression: str | None = None,
    properties: list[str] | None = None,
) -> int:
    """Run a listing command and write what it lists; returns the exit code."""
    paging: dict[str, Any] = {}
    if options.page_size is not None:
        paging["page_size"] = options.page_size
    if options.cursor is not None:
        paging["cursor"] = options.cursor
    state = _State(conn, info, params, writer, options, properties)
    if expression is not None:
        return _queried(conn, info, {**params, **paging}, writer, options, expression, properties)
    with _terminate_as_interrupt():
        try:
            state.save(options.cursor)
            try:
                listing: Listing = conn.invoke(info.service, info.name, **params, **paging)
            except UsageError as exc:
                from bastion.cli.services import refresh_after

                refresh_after(conn, info, exc)
                raise
            state.stream(listing, properties)
        except (ListingIncomplete, KeyboardInterrupt, Interrupted, *INTERRUPTIONS) as exc:
            # A refusal of the first page is the command's error, unless a checkpoint
            # promised a resumable run; a listing stopped part-way is always exit 5.
            if isinstance(exc, ClientError):
                resumable = isinstance(exc, ListingIncomplete) or options.checkpoint is not None
            else:
                resumable = options.all or options.checkpoint is not None
            if not resumable:
                if writer.written:
                    state.finish()
                raise
            state.finish()
            _report(state, exc)
            return 5
        except ClientError:
            if writer.written:
                state.finish()
            raise
    state.finish()
    return 0


class _State:
    def __init__(
        self,
        conn: Connection,
        info: CommandInfo,
        params: dict[str, Any],
        writer: Writer,
        options: ListingOptions,
        properties: list[str] | None,
    ) -> None:
        self.writer = writer
        self.properties = properties
        self.options = options
        self.progress: progresses.Progress = progresses.NoProgress()
        #: the cursor that continues right after what was written
        self.cursor = options.cursor
        self.before = options.resumed.written if options.resumed else 0
        self.more = False
        self.checkpoint: checkpoints.Checkpoint | None = None
        path = options.checkpoint
        if path is not None:
            self.checkpoint = checkpoints.Checkpoint(
                path=path,
                service=info.service,
                command=info.name,
                parameters=params,
                page_size=options.page_size,
                issuer=conn.issuer,
                profile=conn.profile,
                written=self.before,
                pages=options.resumed.pages if options.resumed else 0,
                output={"format": writer.format, "columns": writer.columns},
                argv=options.resumed.argv if options.resumed else options.argv,
            )
        self.label = f"{info.service} {info.name}"

    def save(self, cursor: str | None, *, complete: bool = False) -> None:
        self.cursor = cursor
        ck = self.checkpoint
        if ck is None:
            return
        ck.cursor, ck.complete = cursor, complete
        ck.written = self.before + self.writer.written
        ck.output = {
            "format": self.writer.format,
            "properties": self.properties,
            "columns": self.writer.columns,
            "stdout_offset": checkpoints.stdout_offset(),
        }
        ck.save()

    def stream(self, listing: Listing, properties: list[str] | None) -> None:
        limit = self.options.limit
        if self.options.all or limit is not None:
            self.progress = progresses.start(self.label)
        for page in listing.pages():
            items = page.items
            if limit is not None and self.writer.written + len(items) >= limit:
                items = items[: limit - self.writer.written]
                trimmed = len(items) < len(page.items)
                self.more = trimmed or page.next is not None
                self._write(items, properties, None if trimmed else page.next, last=True)
                return
            self._write(items, properties, page.next, last=page.next is None)
            self.progress.advance(len(items), getattr(page, "total", None))
            if not self.options.all and limit is None:
                self.more = page.next is not None
                return

    def _write(
        self, items: list[Any], properties: list[str] | None, cursor: str | None, *, last: bool
    ) -> None:
        if properties is not None:
            items = pick(items, properties)
        with _held_signals():
            self.writer.page(items)
            self.checkpoint_page(cursor, last)

    def checkpoint_page(self, cursor: str | None, last: bool) -> None:
        if self.checkpoint is not None:
            self.checkpoint.pages += 1
        self.save(cursor, complete=last and cursor is None)

    def finish(self) -> None:
        self.progress.stop()
        self.writer.close()
        if self.more:
            if self.options.more is not None:
                how = self.options.more(self.cursor)
            elif self.cursor is None:
                how = "--all lists every one"
            else:
                command = shlex.join([*self.options.command, "--cursor", self.cursor])
                how = f"--all lists every one; this continues: {command}"
            print(f"(there is more: {how})", file=sys.stderr)


def _report(state: _State, exc: BaseException) -> None:
    written = state.writer.written
    total = state.before + written
    if isinstance(exc, ListingIncomplete):
        cause: BaseException = exc.cause
    else:
        cause = exc
    if isinstance(cause, KeyboardInterrupt):
        why = "interrupted"
    elif isinstance(cause, Interrupted):
        why = "terminated"
    else:
        why = str(cause)
    earlier = f" ({total:,} with the earlier runs)" if state.before else ""
    if state.checkpoint is not None:
        resume = [*state.options.resume_command, "--resume", str(state.checkpoint.path.resolve())]
    elif state.cursor is not None:
        resume = [*state.options.command, "--all", "--cursor", state.cursor]
    else:
        resume = list(state.options.command)
    again = ""
    if isinstance(cause, SignInRequired):
        again = "Sign in again (bastion connect), then resume: "
    print(
        f"bastion: error: the listing stopped after {written:,} objects were written{earlier}: "
        f"{why.rstrip('.')}. {again or 'Resume with: '}{shlex.join(resume)}",
        file=sys.stderr,
    )


def _queried(
    conn: Connection,
    info: CommandInfo,
    params: dict[str, Any],
    writer: Writer,
    options: ListingOptions,
    expression: str,
    properties: list[str] | None,
) -> int:
    """``--query`` sees the whole result: the listing (every page with ``--all``) is
    gathered first."""
    listing: Listing = conn.invoke(info.service, info.name, **params)
    items: list[Any] = []
    for page in listing.pages():
        items.extend(page.items)
        if options.limit is not None and len(items) >= options.limit:
            del items[options.limit :]
            break
        if not options.all:
            break
    result = query(expression, items)
    writer.value(pick(result, properties) if properties is not None else result)
    return 0
