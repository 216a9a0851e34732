"""Running a listing command: every page, checkpoints and resuming (S6).

A listing streams every page (docs/decisions/0026): each is written (and flushed) before the
next is fetched, so memory does not grow with the tenant, and with ``--checkpoint FILE`` the
file is saved after each page. Only ``--first N`` (the shell's ``-ResultSize N``) stops
early, because it was asked to, and then says so on stderr with the command that goes on:
no script receives part of a listing believing it whole. ``--all`` is still accepted; it
changes nothing.

On a terminal's stderr, a listing shows a progress bar (with the total and the time left:
the first page is asked to count the listing) and ends with a summary line: how many, in
how long, how fast.

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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.cli.client_side.services import checkpoint as checkpoints
from bastion.cli.render import progress as progresses
from bastion.cli.render.formats import Writer, pick, query
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
    #: stop after this many objects (``--first``, the shell's -ResultSize); None: all
    limit: int | None = None
    checkpoint: Path | None = None
    resumed: checkpoints.Checkpoint | None = None
    #: the command as typed, without --cursor, --first and --all (continued with --cursor)
    command: list[str] = field(default_factory=lambda: ["bastion"])
    #: the command that resumes from a checkpoint, without its --resume part
    resume_command: list[str] = field(default_factory=lambda: ["bastion"])
    #: the command line as typed (recorded in the checkpoint)
    argv: list[str] = field(default_factory=list)
    #: what to say when there is more than was shown (the shell's own words); given the
    #: cursor that continues
    more: Callable[[str | None], str] | None = None
    #: the line that continues from a cursor, in the shell's own words (None: the command
    #: line's ``--cursor``)
    continues: Callable[[str], str] | None = None


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
    if state.on_terminal:
        paging["count"] = True  # for the progress bar's total and time left
    with _terminate_as_interrupt():
        try:
            state.save(options.cursor)
            try:
                listing: Listing = conn.invoke(info.service, info.name, **params, **paging)
            except UsageError as exc:
                from bastion.cli.client_side.services.cached_catalogs import refresh_after

                refresh_after(conn, info, exc)
                raise
            state.stream(listing, properties)
        except (ListingIncomplete, KeyboardInterrupt, Interrupted, *INTERRUPTIONS) as exc:
            # A refusal of the first page is the command's error, unless a checkpoint
            # promised a resumable run; a listing stopped part-way is always exit 5.
            if isinstance(exc, ClientError):
                resumable = isinstance(exc, ListingIncomplete) or options.checkpoint is not None
            else:
                resumable = True
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
    state.summary()
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
        #: a person watches stderr: progress, and a summary at the end
        self.on_terminal = progresses.on_terminal()
        self.started = time.monotonic()
        #: how many objects the listing holds, when the server counted them
        self.total: int | None = None

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
        # counted with the first page only: a run that starts from a cursor has no total
        self.total = listing.total
        shown = self.total if limit is None or self.total is None else min(limit, self.total)
        self.progress = progresses.start(self.label, total=shown)
        for page in listing.pages():
            items = page.items
            if limit is not None and self.writer.written + len(items) >= limit:
                items = items[: limit - self.writer.written]
                trimmed = len(items) < len(page.items)
                self.more = trimmed or page.next is not None
                self._write(items, properties, None if trimmed else page.next, last=True)
                return
            self._write(items, properties, page.next, last=page.next is None)
            self.progress.advance(len(items))

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
                how = "without --first it lists every one"
            else:
                command = shlex.join([*self.options.command, "--cursor", self.cursor])
                how = f"without --first it lists every one; this continues: {command}"
            of = f" of {self.total:,}" if self.total is not None else ""
            print(
                f"(the first {self.writer.written:,}{of} objects, as asked: there are more; {how})",
                file=sys.stderr,
            )

    def summary(self) -> None:
        """One line on a terminal's stderr: how many objects, in how long, how fast."""
        if not self.on_terminal:
            return
        print(
            progresses.summary(
                self.label,
                self.writer.written,
                time.monotonic() - self.started,
                total=self.total,
            ),
            file=sys.stderr,
        )


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
        resume = [*state.options.command, "--cursor", state.cursor]
        if state.options.limit is not None:  # --first N: only the rest of the N
            resume += ["--first", str(state.options.limit - written)]
    else:
        resume = list(state.options.command)
    how = shlex.join(resume)
    if state.options.continues is not None and state.checkpoint is None:
        how = state.options.continues(state.cursor) if state.cursor else "run it again"
    again = ""
    if isinstance(cause, SignInRequired):
        again = "Sign in again (bastion connect), then resume: "
    print(
        f"bastion: error: the listing stopped after {written:,} objects were written{earlier}: "
        f"{why.rstrip('.')}. {again or 'Resume with: '}{how}",
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
    """``--query`` sees the whole result: every page of the listing (or the ``--first``
    objects asked for) is gathered first."""
    listing: Listing = conn.invoke(info.service, info.name, **params)
    items: list[Any] = []
    for page in listing.pages():
        items.extend(page.items)
        if options.limit is not None and len(items) >= options.limit:
            del items[options.limit :]
            break
    result = query(expression, items)
    writer.value(pick(result, properties) if properties is not None else result)
    return 0
