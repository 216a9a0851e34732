"""Identifiers."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """A random UUID (version 4) as text: the id of a stored object."""
    return str(uuid.uuid4())
