"""Writing one result (a record, or a list of them) in the format the output flags ask for:
``--output``, ``--query`` (JMESPath), ``--property``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from bastion.cli.flags import default_format, opt, properties


@dataclass(frozen=True)
class OutputFlags:
    """The output options of a command, parsed."""

    format: str
    query: str | None = None
    properties: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> OutputFlags:
        return cls(
            format=opt(args, "output") or default_format(),
            query=opt(args, "query"),
            properties=tuple(properties(args) or ()),
        )


def write_records(value: Any, output: OutputFlags, *, listing: bool) -> None:
    """``value`` on stdout: a listing's rows as a table's pages (or JSON lines ...), else as
    one value; picked by the query and properties first."""
    from bastion.cli.render.formats import Writer, pick, query, resolve_properties

    if output.query is not None:
        value = query(output.query, value)
    if output.properties:
        sample = value[0] if isinstance(value, list) and value else value
        known = list(sample) if isinstance(sample, dict) else []
        value = pick(value, resolve_properties(list(output.properties), known))
    writer = Writer(output.format)
    if output.format == "table" and isinstance(value, dict):
        value = {k: _flat(v) for k, v in value.items()}
    if listing and isinstance(value, list) and output.query is None:
        writer.page(value)
        writer.close()
    else:
        writer.value(value)


def _flat(value: Any) -> Any:
    """Access tokens by service, for a table: ``mail until 2024-05-01T09:30:00+02:00``."""
    if isinstance(value, dict):
        return ", ".join(f"{k.rsplit('/', 1)[-1]} until {v}" for k, v in value.items()) or None
    return value
