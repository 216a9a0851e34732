"""Progress of long listings on stderr: a bar while it runs (objects so far, their rate, the
total and the time left when the server counted them), and a summary line at the end.

Both only when stderr is a terminal: a log or a pipe gets neither. The bar also needs
stdout not to be that same terminal (results going to the screen show the progress
themselves, and a bar redrawn between them would garble them). ``rich`` is imported only
for the bar.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Protocol


class Progress(Protocol):
    def advance(self, count: int, total: int | None = None) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    def advance(self, count: int, total: int | None = None) -> None:
        pass

    def stop(self) -> None:
        pass


def on_terminal() -> bool:
    """Whether a person watches stderr."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def wanted() -> bool:
    """Whether to draw a bar: stderr a terminal, and stdout not that same terminal."""
    try:
        if not sys.stderr.isatty():
            return False
        if not sys.stdout.isatty():
            return True
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return not os.path.samestat(out, err)


def summary(label: str, count: int, seconds: float, *, total: int | None = None) -> str:
    """``mail Get-Mailbox: 2,000 objects in 1.4 s (1,430/s)``; with a total that was not
    reached (``--first``), ``150 of 2,000 objects``."""
    of = f" of {total:,}" if total is not None and total != count else ""
    rate = f" ({count / seconds:,.0f}/s)" if seconds > 0 and count else ""
    return f"{label}: {count:,}{of} objects in {_duration(seconds)}{rate}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def start(label: str, *, total: int | None = None) -> Progress:
    if not wanted():
        return NoProgress()
    return RichProgress(label, total)


class RichProgress:
    def __init__(self, label: str, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}"),
            TextColumn("{task.fields[of]}"),
            Rate(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        of = f"of {total:,}" if total is not None else ""
        self._task = self._progress.add_task(label, total=total, of=of)
        self._progress.start()

    def advance(self, count: int, total: int | None = None) -> None:
        if total is not None:
            self._progress.update(self._task, total=total)
        self._progress.advance(self._task, count)
        # drawn now rather than at rich's next tick: a short listing shows its total too
        self._progress.refresh()

    def stop(self) -> None:
        self._progress.stop()
