"""Opening a connection for a client command: the profile and session options given, the
person's terminal as the prompt, and nothing sent to the network until it is needed."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from bastion.cli.flags import SessionFlags

if TYPE_CHECKING:
    from bastion.client.connection import Connection
    from bastion.client.prompt import Prompt


class _Warnings(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"bastion: warning: {record.getMessage()}", file=sys.stderr)


def quiet_library_logs() -> None:
    """The library's warnings (a key kept in a file, a cache discarded) as one stderr line
    each, like the CLI's own messages."""
    log = logging.getLogger("bastion.client")
    if not any(isinstance(h, _Warnings) for h in log.handlers):
        handler = _Warnings()
        handler.setLevel(logging.WARNING)
        log.addHandler(handler)
        log.propagate = False


def open_connection(
    args: argparse.Namespace | SessionFlags,
    *,
    url: str | None = None,
    tenant: str | None = None,
    method: str | None = None,
    profile: str | None = None,
    prompt: Prompt | None = None,
) -> Connection:
    """A :class:`Connection` (not signed in yet: that happens at the first command, or with
    ``sign_in()``). Every request it makes, sign-in included, uses the session options."""
    from bastion.client import files, profiles
    from bastion.client.connection import Connection
    from bastion.client.settings import resolve

    quiet_library_logs()
    session = args if isinstance(args, SessionFlags) else SessionFlags.from_args(args)
    kwargs: dict[str, Any] = session.kwargs()
    if profile is not None:
        kwargs["profile"] = profile
    if kwargs.get("profile") is None and url is None and profiles.current_profile() is None:
        from bastion.client.errors import SignInRequired

        raise SignInRequired(
            "there is no profile yet, so no server to connect to.",
            hint="Sign in first: bastion connect --url URL --tenant NAME.",
        )
    settings = resolve(files.config_dir_of(None), url=url, tenant=tenant, method=method, **kwargs)
    return Connection(settings, prompt=prompt, interactive=session.interactive)
