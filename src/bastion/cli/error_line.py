"""An error as the CLI prints it: what went wrong and what to do, on one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.client.errors import ClientError

if TYPE_CHECKING:
    from bastion.core.errors import BastionError


def one_line(exc: BastionError | ClientError) -> str:
    """What went wrong and what to do, on one line."""
    text = exc.for_cli() if isinstance(exc, ClientError) else f"{exc.detail} {exc.hint or ''}"
    return " ".join(text.split())
