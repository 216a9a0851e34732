"""Bastion: an MFA-first administration plane for multi-service organizations.

``bastion.connect(...)`` is the client library's entry point (``bastion.client``); it is
imported on first use, so ``import bastion`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "connect"]

if TYPE_CHECKING:
    from bastion.client.connection import connect


def __getattr__(name: str) -> Any:
    if name == "connect":
        from bastion.client.connection import connect

        return connect
    raise AttributeError(f"module 'bastion' has no attribute '{name}'")
