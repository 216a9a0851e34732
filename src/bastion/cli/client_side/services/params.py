"""Commands and parameters as the CLI and the shell see them, read from a service's catalog.

A catalog entry describes its parameters as a JSON Schema object. Each property becomes a
:class:`Param`: its name in each form (``litigation_hold``, ``--litigation-hold``,
``-LitigationHold``), its JSON type, allowed values, bounds and default, and a converter from
the text a person typed to the JSON value sent. The argparse parser (``services/arguments.py``)
and the shell's PowerShell-form parser (``shell/pwsh.py``) are both built on it, so the two
never disagree about what a parameter accepts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bastion.cli.flags import RESERVED

if TYPE_CHECKING:
    from bastion.client.catalog import CommandInfo

TRUE = frozenset({"true", "yes", "on", "1", "$true"})
FALSE = frozenset({"false", "no", "off", "0", "$false"})
_SENTENCE = re.compile(r"(?<=[.!?])\s")


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"'{text}' is not true or false")


def normalize(name: str) -> str:
    """The form names are compared in: ``-LitigationHold``, ``--litigation-hold`` and
    ``litigation_hold`` are all ``litigationhold``."""
    return name.lstrip("-").replace("-", "").replace("_", "").lower()


def kebab(name: str) -> str:
    return name.replace("_", "-")


def pascal(name: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in name.split("_") if word)


def first_sentence(text: str) -> str:
    """The one-line help of a command: its help's first sentence."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    return _SENTENCE.split(paragraph, maxsplit=1)[0]


@dataclass(frozen=True)
class Param:
    """One parameter of a command."""

    name: str
    #: JSON type: string, integer, number, boolean, array, object or any
    kind: str
    #: for arrays, the JSON type of the items
    item_kind: str | None
    #: allowed values (of the items, for arrays)
    choices: tuple[Any, ...] | None
    nullable: bool
    required: bool
    has_default: bool
    default: Any
    description: str
    bounds: dict[str, Any]
    format: str | None = None
    #: a secret (``writeOnly`` or ``format: password``): read from a prompt, stdin or a
    #: file, never from the command line (``cli/secret_input.py``)
    secret: bool = False

    @property
    def flag(self) -> str:
        """The CLI option: ``--kebab-case``, or ``--param-NAME`` when the CLI uses the name."""
        flag = "--" + kebab(self.name)
        return f"--param-{kebab(self.name)}" if flag in RESERVED else flag

    @property
    def negative_flag(self) -> str | None:
        """``--no-NAME``: false for a boolean; null for a parameter that may be null where
        null means something (it is required, or its default is not null)."""
        if self.kind == "boolean" or self.sends_null:
            return "--no-" + self.flag[2:]
        return None

    @property
    def sends_null(self) -> bool:
        return self.nullable and (self.required or (self.has_default and self.default is not None))

    @property
    def pwsh(self) -> str:
        """The PowerShell-form name: ``LitigationHold``."""
        return pascal(self.name)

    @property
    def switch(self) -> bool:
        return self.kind == "boolean"

    @property
    def type_text(self) -> str:
        kind = self.item_kind if self.kind == "array" else self.kind
        text = {"boolean": "true|false", "any": "JSON", "object": "JSON object"}.get(
            kind or "any", kind or "any"
        )
        if self.format:
            text = f"{text} ({self.format}, ISO 8601)"
        if self.kind == "array":
            text = f"list of {text}, comma-separated or repeated"
        low, high = self.bounds.get("minimum"), self.bounds.get("maximum")
        if low is not None and high is not None:
            text += f", {low} to {high}"
        elif low is not None:
            text += f", at least {low}"
        elif high is not None:
            text += f", at most {high}"
        return text

    def help_text(self) -> str:
        parts = [self.description.rstrip(".") + "." if self.description else ""]
        details = []
        if self.choices:
            details.append("one of: " + ", ".join(str(c) for c in self.choices))
            if self.kind == "array":
                details.append("a list, comma-separated or repeated")
        else:
            details.append(self.type_text)
        if self.required:
            details.append("required")
        elif self.has_default and self.default is not None:
            details.append(f"default: {_show(self.default)}")
        if self.sends_null and self.kind != "boolean":
            details.append(f"{self.negative_flag} sends null")
        if self.secret:
            details.append(
                f"asked for without echo; or {self.flag}-stdin, or {self.flag}-file FILE"
            )
        parts.append(f"({'; '.join(details)})")
        return " ".join(p for p in parts if p).replace("%", "%%")

    def metavar(self) -> str:
        kind = self.item_kind if self.kind == "array" else self.kind
        if self.choices:
            return "{" + ",".join(str(c) for c in self.choices) + "}"
        word = {"string": "TEXT", "integer": "N", "number": "NUMBER"}.get(kind or "", "JSON")
        if self.format in ("date-time", "date"):
            word = "TIME" if self.format == "date-time" else "DATE"
        return f"{word}[,{word}...]" if self.kind == "array" else word

    # -- converting typed text -------------------------------------------------------------

    def convert(self, text: str) -> Any:
        """The JSON value of one typed value (a whole list for arrays); ``ValueError`` with
        a message for people when it does not fit."""
        if self.kind == "array":
            stripped = text.strip()
            if stripped.startswith("["):
                try:
                    values = json.loads(stripped)
                except ValueError as exc:
                    raise ValueError(f"'{text}' is not a JSON list: {exc}") from None
                if not isinstance(values, list):
                    raise ValueError(f"'{text}' is not a JSON list")
                texts = [v if isinstance(v, str) else json.dumps(v) for v in values]
                return [self.convert_item(v) for v in texts]
            return [self.convert_item(v.strip()) for v in text.split(",") if v.strip()]
        return self.convert_item(text)

    def convert_item(self, text: str) -> Any:
        kind = (self.item_kind if self.kind == "array" else self.kind) or "any"
        value: Any
        if kind == "boolean":
            value = parse_bool(text)
        elif kind == "integer":
            try:
                value = int(text.replace(",", "").strip())
            except ValueError:
                raise ValueError(f"'{text}' is not a whole number") from None
        elif kind == "number":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"'{text}' is not a number") from None
        elif kind == "string":
            value = text
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        if self.choices:
            value = self._choice(value)
        self._check(value)
        return value

    def _choice(self, value: Any) -> Any:
        for choice in self.choices or ():
            if choice == value:
                return choice
        if isinstance(value, str):
            for choice in self.choices or ():
                if isinstance(choice, str) and choice.lower() == value.lower():
                    return choice
        allowed = ", ".join(str(c) for c in self.choices or ())
        raise ValueError(f"'{value}' is not one of: {allowed}")

    def _check(self, value: Any) -> None:
        b = self.bounds
        if isinstance(value, int | float) and not isinstance(value, bool):
            if b.get("minimum") is not None and value < b["minimum"]:
                raise ValueError(f"{value} is less than {b['minimum']}")
            if b.get("maximum") is not None and value > b["maximum"]:
                raise ValueError(f"{value} is more than {b['maximum']}")
            if b.get("exclusiveMinimum") is not None and value <= b["exclusiveMinimum"]:
                raise ValueError(f"{value} must be more than {b['exclusiveMinimum']}")
            if b.get("exclusiveMaximum") is not None and value >= b["exclusiveMaximum"]:
                raise ValueError(f"{value} must be less than {b['exclusiveMaximum']}")
        if isinstance(value, str):
            if b.get("minLength") is not None and len(value) < b["minLength"]:
                raise ValueError(f"'{value}' is shorter than {b['minLength']} characters")
            if b.get("maxLength") is not None and len(value) > b["maxLength"]:
                raise ValueError(f"the value is longer than {b['maxLength']} characters")
            if self.format == "date-time":
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    raise ValueError(
                        f"'{value}' is not a time in ISO 8601 (2024-05-01T09:30:00Z)"
                    ) from None
            elif self.format == "date":
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"'{value}' is not a date (2024-05-01)") from None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or "''"
    return json.dumps(value)


def _kind(schema: dict[str, Any]) -> tuple[str, bool]:
    kind = schema.get("type")
    nullable = False
    if isinstance(kind, list):
        nullable = "null" in kind
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        values = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
        if values and all(isinstance(v, str) for v in values):
            kind = "string"
        elif values and all(isinstance(v, bool) for v in values):
            kind = "boolean"
    return str(kind or "any"), nullable


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength")


def param_of(name: str, schema: dict[str, Any], *, required: bool) -> Param:
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    options = [o for o in options if isinstance(o, dict)]
    nullable = any(o.get("type") == "null" for o in options)
    concrete = [o for o in options if o.get("type") != "null"] or [{}]
    main = concrete[0]
    kind, null_too = _kind(main)
    item_kind: str | None = None
    choices: list[Any] | None = None
    fmt = main.get("format")
    bounds = {k: main[k] for k in _BOUNDS if k in main}
    if kind == "array":
        items = main.get("items") if isinstance(main.get("items"), dict) else {}
        item_kind, _ = _kind(items)
        choices = items.get("enum")
        fmt = items.get("format")
        bounds = {k: items[k] for k in _BOUNDS if k in items}
    else:
        choices = main.get("enum") or schema.get("enum")
        if choices is None and "const" in main:
            choices = [main["const"]]
    return Param(
        name=name,
        kind=kind,
        item_kind=item_kind,
        choices=tuple(choices) if choices else None,
        nullable=nullable or null_too,
        required=required,
        has_default="default" in schema,
        default=schema.get("default"),
        description=" ".join(str(schema.get("description") or "").split()),
        bounds=bounds,
        format=str(fmt) if fmt else None,
        secret=kind == "string" and any(_marked_secret(o) for o in (schema, main)),
    )


def _marked_secret(schema: dict[str, Any]) -> bool:
    return schema.get("writeOnly") is True or schema.get("format") == "password"


def params_of(info: CommandInfo) -> list[Param]:
    """The parameters a person gives (a listing's ``cursor``, ``page_size`` and ``count``
    are the CLI's own business)."""
    properties = info.parameters.get("properties") or {}
    required = set(info.parameters.get("required") or [])
    return [
        param_of(name, schema if isinstance(schema, dict) else {}, required=name in required)
        for name, schema in properties.items()
        if not (info.lists and name in ("cursor", "page_size", "count"))
    ]


def kebab_command(info: CommandInfo) -> str:
    """``Get-MailboxStatistics`` -> ``get-mailbox-statistics``."""
    return info.python_name.replace("_", "-")


def find_param(params: list[Param], typed: str) -> Param | None:
    """A parameter by any of its forms, or by an unambiguous prefix (as PowerShell allows)."""
    key = normalize(typed)
    exact = [p for p in params if normalize(p.name) == key]
    if exact:
        return exact[0]
    prefixed = [p for p in params if normalize(p.name).startswith(key)]
    return prefixed[0] if len(prefixed) == 1 else None
