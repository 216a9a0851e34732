"""Declaring a command: one typed function, from which everything else is derived.

A command is a function registered to a service under a PowerShell-style ``Verb-Noun``
name. Its docstring is its help; each keyword parameter is ``Annotated`` with a pydantic
``Field`` carrying the parameter's help and constraints; its return annotation is its output.
From that one declaration come the catalog entry, the JSON Schemas of parameters and output,
validation with errors that name the parameter, and the HTTP endpoint (``plane/http.py``)::

    mail = Service("mail")  # bastion.plane.service

    @mail.command("Get-Mailbox")
    def get_mailbox(
        ctx: CommandContext,
        identity: Annotated[str, Field(description="Id, address or user principal name.")],
    ) -> Mailbox:
        \"\"\"Get one mailbox.\"\"\"

Listing commands (``lists=True``) return a :class:`~bastion.plane.listings.Listing`; the plane
pages it. A listing that takes an ``identity`` parameter is also how its noun is got by
name (``Get-Mailbox -Identity alice``): when the identity is given and names nothing, the
plane answers 404 instead of an empty page (``identifies=`` names another parameter, or
``None`` for none). Sensitive commands (``sensitive=True``) need a recent second factor
(step-up). Commands that act on objects belonging to directory users declare
``scoped=True`` and keep to ``ctx.scope`` themselves (``bastion.plane.scope``); every other
command is refused to a caller whose role groups allow it only within a scope (deny by
default).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Union

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

NAME = re.compile(r"^[A-Z][a-z]+-[A-Z][A-Za-z]+$")
VERBS = frozenset(
    {
        "Get",
        "New",
        "Set",
        "Remove",
        "Add",
        "Enable",
        "Disable",
        "Grant",
        "Revoke",
        "Search",
        "Export",
        "Reset",
    }
)


@dataclass(frozen=True)
class CommandSpec:
    service: str
    name: str
    help: str
    func: Callable[..., Any]
    parameters: type[BaseModel]
    output: TypeAdapter[Any]
    #: a listing's page of items, serialized to JSON in one call
    page: TypeAdapter[list[Any]] | None
    lists: bool
    sensitive: bool
    scoped: bool
    #: work done before the command's transaction opens (``prepare=`` of :class:`Options`)
    prepare: Prepare | None = None
    #: a listing's parameter that names one object: given, and matching nothing, it is a 404
    identifies: str | None = None

    @property
    def noun(self) -> str:
        """What the command acts on, in words: ``Get-ChatUser`` -> ``chat user``."""
        return re.sub(r"(?<!^)(?=[A-Z])", " ", self.name.split("-", 1)[1]).lower()

    @property
    def reads_only(self) -> bool:
        return self.name.split("-", 1)[0] in ("Get", "Search")

    def catalog_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "help": self.help,
            "parameters": self.parameters.model_json_schema(),
            "output": self.output.json_schema(),
            "lists": self.lists,
            "sensitive": self.sensitive,
        }


#: the range every whole-number parameter is kept to unless it declares a narrower one:
#: what a signed 64-bit column (SQLite INTEGER, PostgreSQL BIGINT) holds, from zero
INT_MIN = 0
INT_MAX = 2**63 - 1

#: ``Field(json_schema_extra=SECRET)`` marks a parameter as a secret in the catalog: JSON
#: Schema's ``writeOnly`` and OpenAPI's ``format: password``. Clients read such a value from
#: a prompt, stdin or a file, never from the command line.
SECRET: dict[str, Any] = {"writeOnly": True, "format": "password"}

#: ``prepare(hasher, arguments) -> values``: slow work on the arguments (hashing a password)
#: done before the transaction, so no lock is held meanwhile; the command finds the values
#: in ``ctx.prepared``
Prepare = Callable[[Any, dict[str, Any]], dict[str, Any]]


class _Parameters(BaseModel):
    # R5: a parameter the declaration does not name is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


def _help_of(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func)
    if not doc:
        raise TypeError(f"command {func.__qualname__} needs a docstring: it is its help")
    return plain_text(doc)


_LITERAL = re.compile(r"``([^`]+)``")
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain_text(doc: str) -> str:
    """A docstring as people read help: reStructuredText's ``literals`` in quotes, and
    :role:`targets` as their last name, for every client that shows a catalog."""
    text = _LITERAL.sub(r"'\1'", doc)
    return _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)


@dataclass(frozen=True)
class Options:
    """How a command is declared besides its function: see this module's docstring."""

    lists: bool = False
    sensitive: bool = False
    scoped: bool = False
    prepare: Prepare | None = None
    identifies: str | None = "identity"


def check_name(name: str) -> None:
    """A command's name is ``Verb-Noun`` with a known verb, as PowerShell's are."""
    if not NAME.match(name) or name.split("-", 1)[0] not in VERBS:
        raise ValueError(f"'{name}' is not a Verb-Noun command name with a known verb")


def declare(service: str, name: str, func: Callable[..., Any], options: Options) -> CommandSpec:
    """The declaration of ``func`` as ``name`` of ``service``: its parameters' model, its
    output's adapter and its help, all read from the function."""
    check_name(name)
    hints = typing.get_type_hints(func, include_extras=True)
    signature = inspect.signature(func)
    fields: dict[str, Any] = {}
    for index, (pname, param) in enumerate(signature.parameters.items()):
        if index == 0:
            continue  # the CommandContext
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{name}: parameter '{pname}' must be keyword-only")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (_bounded(hints[pname]), default)
    model_name = name.replace("-", "") + "Parameters"
    parameters = create_model(model_name, __base__=_Parameters, **fields)
    output_type = hints.get("return", Any)
    lists = options.lists
    return CommandSpec(
        service=service,
        name=name,
        help=_help_of(func),
        func=func,
        parameters=parameters,
        output=TypeAdapter(_item_type(output_type) if lists else output_type),
        page=_page_of(output_type) if lists else None,
        lists=lists,
        sensitive=options.sensitive,
        scoped=options.scoped,
        prepare=options.prepare,
        identifies=options.identifies if lists and options.identifies in fields else None,
    )


def _bounded(hint: Any) -> Any:
    """``hint`` with :data:`INT_MIN`..:data:`INT_MAX` added to a whole-number parameter
    (``int`` or ``int | None``) for the bounds it does not declare, so that no value the
    store cannot hold reaches a command, and the catalog's JSON Schema says so."""
    base: Any = hint
    metadata: tuple[Any, ...] = ()
    if typing.get_origin(hint) is Annotated:
        base, *rest = typing.get_args(hint)
        metadata = tuple(rest)
    members = typing.get_args(base) if typing.get_origin(base) in (Union, UnionType) else (base,)
    if int not in members or not set(members) <= {int, NoneType}:
        return hint
    declared: list[object] = []
    for item in metadata:  # a pydantic Field carries its constraints in ``metadata``
        declared.extend(getattr(item, "metadata", [item]))
    lower = any(isinstance(c, annotated_types.Ge | annotated_types.Gt) for c in declared)
    upper = any(isinstance(c, annotated_types.Le | annotated_types.Lt) for c in declared)
    extra: dict[str, int] = {}
    if not lower:
        extra["ge"] = INT_MIN
    if not upper:
        extra["le"] = INT_MAX
    if not extra:
        return hint
    return Annotated[hint, Field(**extra)]  # type: ignore[call-overload]


def _page_of(output_type: Any) -> TypeAdapter[list[Any]]:
    item = _item_type(output_type)
    return TypeAdapter(list[item])  # type: ignore[valid-type]


def _item_type(output_type: Any) -> Any:
    """A listing declares ``-> Listing[Item]``; its output schema is that of one item."""
    args = typing.get_args(output_type)
    return args[0] if args else Any
