"""A service's command catalog (``GET {service}/commands``), as the client reads it.

Each entry names a ``Verb-Noun`` command with its help, its parameters as a JSON Schema,
its output schema, and whether it lists or is sensitive. The client builds its methods from
it (``Get-Mailbox`` becomes ``get_mailbox``), so a command added to the server needs no new
client. Catalogs are kept on disk (``bastion.client.documents``).
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

from bastion.client.documents import DocumentCache
from bastion.client.errors import ServerError
from bastion.client.http import Http

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b)|[A-Z]?[a-z]+|[A-Z]+|\d+")
READ_VERBS = frozenset({"Get", "Search"})


def python_name(command: str) -> str:
    """``Get-Mailbox`` -> ``get_mailbox``, ``Get-UserMfa`` -> ``get_user_mfa``."""
    return "_".join(w.lower() for part in command.split("-") for w in _WORD.findall(part))


def python_parameter(name: str) -> str:
    """A parameter's keyword in Python: ``from`` becomes ``from_``."""
    return f"{name}_" if keyword.iskeyword(name) else name


def reads_only(command: str) -> bool:
    return command.split("-", 1)[0] in READ_VERBS


@dataclass(frozen=True)
class Parameter:
    name: str
    required: bool
    description: str
    schema: dict[str, Any]

    @property
    def type_text(self) -> str:
        """The JSON type(s) of the parameter, in words: ``string``, ``integer or null``."""
        options = self.schema.get("anyOf") or [self.schema]
        kinds = [str(o.get("type", "any")) for o in options if isinstance(o, dict)]
        return " or ".join(dict.fromkeys(kinds)) or "any"


@dataclass(frozen=True)
class CommandInfo:
    service: str
    name: str
    help: str
    parameters: dict[str, Any]
    output: dict[str, Any]
    lists: bool
    sensitive: bool

    @property
    def python_name(self) -> str:
        return python_name(self.name)

    @property
    def reads_only(self) -> bool:
        return reads_only(self.name)

    def parameter_list(self) -> list[Parameter]:
        properties = self.parameters.get("properties") or {}
        required = set(self.parameters.get("required") or [])
        found = [
            Parameter(
                name=name,
                required=name in required,
                description=str(schema.get("description", "")),
                schema=schema,
            )
            for name, schema in properties.items()
        ]
        if self.lists:
            found.append(
                Parameter("cursor", False, "Resume a listing from this cursor.", {"type": "string"})
            )
            found.append(
                Parameter("page_size", False, "Objects per page (1-1000).", {"type": "integer"})
            )
            found.append(
                Parameter(
                    "count",
                    False,
                    "Count the whole listing with its first page (Listing.total).",
                    {"type": "boolean"},
                )
            )
        return found

    def docstring(self) -> str:
        lines = [self.help.strip(), ""]
        parameters = self.parameter_list()
        if parameters:
            lines.append("Parameters:")
            for p in parameters:
                need = "required" if p.required else "optional"
                lines.append(
                    f"    {python_parameter(p.name)} ({p.type_text}, {need}): {p.description}"
                )
            lines.append("")
        if self.lists:
            lines.append("Returns a Listing: iterate it; pages are fetched as they are consumed.")
        if self.sensitive:
            lines.append("Sensitive: needs a recent second factor (you may be asked for it).")
        lines.append(f"Command: {self.service} {self.name}")
        return "\n".join(lines).strip() + "\n"


@dataclass(frozen=True)
class Catalog:
    service: str
    commands: dict[str, CommandInfo]
    version: str

    def by_python_name(self) -> dict[str, CommandInfo]:
        return {c.python_name: c for c in self.commands.values()}

    def find(self, name: str) -> CommandInfo | None:
        """A command by its catalog name (any case) or its Python name."""
        for info in self.commands.values():
            if name.lower() in (info.name.lower(), info.python_name):
                return info
        return None


def load(
    http: Http, documents: DocumentCache, service: str, base: str, *, refresh: bool = False
) -> Catalog:
    doc = documents.get(http, f"{base}/commands", what=f"the catalog of {service}", refresh=refresh)
    entries = doc.body.get("commands")
    if not isinstance(entries, list):
        raise ServerError(f"the catalog of {service} has no list of commands.")
    commands: dict[str, CommandInfo] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        commands[entry["name"]] = CommandInfo(
            service=service,
            name=entry["name"],
            help=str(entry.get("help") or ""),
            parameters=dict(entry.get("parameters") or {}),
            output=dict(entry.get("output") or {}),
            lists=bool(entry.get("lists")),
            sensitive=bool(entry.get("sensitive")),
        )
    # the server names its catalog's version (the ETag's value); else the ETag or a hash
    version = doc.body.get("version")
    return Catalog(
        service=service,
        commands=commands,
        version=version if isinstance(version, str) and version else doc.version,
    )
