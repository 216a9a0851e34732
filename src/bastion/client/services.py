"""Services as attribute namespaces, their commands as Python methods, from the catalog.

``conn.mail`` is the mail service; ``conn.mail.get_mailbox(identity="alice")`` runs its
``Get-Mailbox``. The methods come from the service's catalog at first use (from disk when it
is cached), carry the catalog's help as their docstring and its parameters as keyword-only
parameters in their signature, and are listed by ``dir()``, so ``help()``, a REPL and a
notebook complete and document them.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
from typing import Any, Protocol

from bastion.client.catalog import Catalog, CommandInfo, python_parameter
from bastion.client.errors import ClientError, UsageError


class Connection(Protocol):
    """What a service's commands need of the connection that made them
    (``bastion.client.connection.Connection``)."""

    def catalog(self, service: str, *, refresh: bool = False) -> Catalog: ...

    def invoke(self, service: str, command: str, /, **params: Any) -> Any: ...


class Command:
    """One command of a service, callable with keyword parameters."""

    def __init__(self, conn: Connection, info: CommandInfo) -> None:
        self._conn = conn
        self.info = info
        self.__name__ = info.python_name
        self.__qualname__ = f"{info.service}.{info.python_name}"
        self.__doc__ = info.docstring()
        self.__signature__ = _signature(info)

    def __call__(self, **params: Any) -> Any:
        known = self._known()
        if not set(params) <= set(known):  # the server may have added it since: look again
            fresh = self._conn.catalog(self.info.service, refresh=True).find(self.info.name)
            if fresh is not None:
                self.info = fresh
                known = self._known()
        sent: dict[str, Any] = {}
        for key, value in params.items():
            name = known.get(key)
            if name is None:
                close = difflib.get_close_matches(key, list(known), n=1)
                raise UsageError(
                    f"{self.info.name} has no parameter '{key}'.",
                    hint=f"Did you mean '{close[0]}'?"
                    if close
                    else f"It takes: {', '.join(known) or 'no parameters'}.",
                    problem={"parameter": key},
                )
            sent[name] = value
        return self._conn.invoke(self.info.service, self.info.name, **sent)

    def _known(self) -> dict[str, str]:
        return {python_parameter(p.name): p.name for p in self.info.parameter_list()}

    def __repr__(self) -> str:
        return f"<command {self.info.service} {self.info.name}>"


def _signature(info: CommandInfo) -> inspect.Signature:
    parameters = []
    for p in info.parameter_list():
        default = inspect.Parameter.empty if p.required else p.schema.get("default")
        parameters.append(
            inspect.Parameter(
                python_parameter(p.name), inspect.Parameter.KEYWORD_ONLY, default=default
            )
        )
    return inspect.Signature(parameters)


class Service:
    """A service of the tenant: its commands as methods."""

    def __init__(self, conn: Connection, name: str, base: str) -> None:
        self._conn = conn
        self.name = name
        #: the service's URL, which is also its token audience
        self.url = base

    def catalog(self, *, refresh: bool = False) -> Catalog:
        return self._conn.catalog(self.name, refresh=refresh)

    def commands(self) -> list[CommandInfo]:
        """The service's commands, as its catalog describes them."""
        return list(self.catalog().commands.values())

    def invoke(self, command: str, /, **params: Any) -> Any:
        """Run ``command`` (its catalog name, ``Get-Mailbox``) with JSON parameters."""
        return self._conn.invoke(self.name, command, **params)

    def __getattr__(self, attribute: str) -> Command:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        info = self.catalog().by_python_name().get(attribute)
        if info is None:  # a command added to the server since the catalog was cached
            info = self.catalog(refresh=True).by_python_name().get(attribute)
        if info is None:
            known = sorted(self.catalog().by_python_name())
            close = difflib.get_close_matches(attribute, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise AttributeError(f"the {self.name} service has no command '{attribute}'.{hint}")
        return Command(self._conn, info)

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        with contextlib.suppress(ClientError):  # dir() must not fail for want of a catalog
            names.update(self.catalog().by_python_name())
        return sorted(names)

    def __repr__(self) -> str:
        return f"<service {self.name} at {self.url}>"
