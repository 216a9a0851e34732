"""A progress bar on stderr for long listings: objects so far, their rate, and the time left
when the server says how many there are.

Shown only when stderr is a terminal and stdout is not that same terminal (results going to
the screen show the progress themselves, and a bar redrawn between them would garble them).
``rich`` is imported only then.
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


def wanted() -> bool:
    try:
        if not sys.stderr.isatty():
            return False
        if not sys.stdout.isatty():
            return True
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return not os.path.samestat(out, err)


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
            Rate(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(label, total=total)
        self._progress.start()

    def advance(self, count: int, total: int | None = None) -> None:
        if total is not None:
            self._progress.update(self._task, total=total)
        self._progress.advance(self._task, count)

    def stop(self) -> None:
        self._progress.stop()
