"""A service of the command plane as an object: its name, its commands and its catalog.

A service module makes its service and declares its commands on it, as FastAPI's
``APIRouter`` takes routes and Typer's app takes commands::

    mail = Service("mail")

    @mail.command("Get-Mailbox", lists=True, scoped=True)
    def get_mailbox(ctx: CommandContext, *, identity: ...) -> Listing[Mailbox]:
        \"\"\"Get mailboxes.\"\"\"

A service whose commands live in several modules takes the others' :class:`Commands` with
:meth:`Service.include`, as ``include_router`` does. The server is built from a list of
services (``bastion.services.SERVICES``); its routes, audiences and catalogs come from that
list, and nothing is registered anywhere by importing a module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from bastion.plane.declare import CommandSpec, Options, Prepare, check_name, declare
from bastion.plane.roles import (
    GLOBAL_ADMINISTRATOR,
    READ_ONLY_REPORTING,
    RoleEntry,
    Roles,
    readers,
)

F = TypeVar("F", bound=Callable[..., Any])


class Commands:
    """Commands declared together, in the order they were declared."""

    def __init__(self, service: str = "") -> None:
        self._service = service
        self._specs: dict[str, CommandSpec] = {}

    def command(
        self,
        name: str,
        *,
        lists: bool = False,
        sensitive: bool = False,
        scoped: bool = False,
        prepare: Prepare | None = None,
        identifies: str | None = "identity",
    ) -> Callable[[F], F]:
        """Declare ``func`` as the command ``name`` (``bastion.plane.declare`` says how)."""
        check_name(name)  # at once, as the decorator is made
        options = Options(lists, sensitive, scoped, prepare, identifies)

        def register(func: F) -> F:
            self._add(declare(self._service, name, func, options))
            return func

        return register

    def _add(self, spec: CommandSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"{self._service or 'these commands'} already have {spec.name}")
        self._specs[spec.name] = spec

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(name)

    def __getitem__(self, name: str) -> CommandSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)


class Service(Commands):
    """A named service: ``/api/{name}/commands`` and the audience ``{base}/api/{name}``."""

    def __init__(self, name: str, *, roles: Roles | None = None) -> None:
        if not name.isascii() or not name.isalpha() or not name.islower():
            raise ValueError(f"'{name}' is not a service name: lowercase letters only")
        super().__init__(name)
        self.name = name
        #: the roles this service brings, by name (a role may name other services' readers)
        self.roles: dict[str, tuple[RoleEntry, ...]] = dict(roles or {})
        #: the catalog as served, rendered at its first request: (JSON body, strong ETag)
        self._catalog: tuple[bytes, str] | None = None

    def include(self, commands: Commands) -> None:
        """Take ``commands`` declared in another module as this service's, after the
        commands it has so far (their order is the catalog's)."""
        for spec in commands:
            self._add(replace(spec, service=self.name))

    def _add(self, spec: CommandSpec) -> None:
        super()._add(spec)
        self._catalog = None

    def catalog(self) -> tuple[bytes, str]:
        """The catalog's JSON and its strong ETag: a hash of the catalog, also given in
        the body as ``version``, so that a client sees any change in any command."""
        if self._catalog is None:
            body: dict[str, Any] = {
                "service": self.name,
                "commands": [spec.catalog_entry() for spec in self],
            }
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
            body["version"] = digest
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            self._catalog = (content, f'"{digest}"')
        return self._catalog

    def __repr__(self) -> str:
        return f"Service({self.name!r})"


def built_in_roles(services: Iterable[Service]) -> dict[str, tuple[RoleEntry, ...]]:
    """The server's roles, from its services: Global Administrator (every command), the roles
    each service declares (a role two services declare joins their entries), and Read-Only
    Reporting (the readers of every service)."""
    chosen = list(services)
    found: dict[str, tuple[RoleEntry, ...]] = {GLOBAL_ADMINISTRATOR: (RoleEntry("*", "*"),)}
    for service in chosen:
        for name, entries in service.roles.items():
            found[name] = found.get(name, ()) + tuple(entries)
    found[READ_ONLY_REPORTING] = tuple(readers(service.name) for service in chosen)
    return found
