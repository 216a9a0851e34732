"""Bastion's client library: one connection, every service of a tenant, signed in with MFA.

::

    import bastion

    conn = bastion.connect("https://bastion.example.org", "contoso")
    conn.directory.get_user(identity="admin@contoso")      # a method per command
    for mailbox in conn.mail.get_mailbox():                # listings stream page by page
        ...
    conn.mail.get_mailbox(count=True).total                # how many: counted with page 1
    conn.mail.get_mailbox(identity="nobody")               # raises NotFoundError (404)
    conn.invoke("sites", "Get-Site", page_size=100)        # any command, by its name

``connect(url=None, tenant=None, *, method=None, profile=None, token=None, interactive=None,
proxy=None, timeout=None, ca_bundle=None, retries=None, prompt=None, config_dir=None,
app_id=None, certificate=None, federated_token_file=None)``

- ``url``, ``tenant``: the server and the tenant; the issuer is ``{url}/t/{tenant}``.
  Without them, the profile named by ``profile`` (else ``$BASTION_PROFILE``, else the
  current profile) gives them.
- ``method``: ``"auto"`` (the default: the browser where there is a display, else the device
  code), ``"browser"``, ``"device"``, ``"terminal"`` or ``"token"``.
- ``token``: an access token to use as it is (never renewed; one service's audience).
- ``interactive``: whether a person may be asked; see :mod:`bastion.client.prompt`.
- ``app_id`` with ``certificate`` (a PEM file with the private key and the certificate, or
  a PKCS#12 file whose password is ``$BASTION_CERTIFICATE_PASSWORD``) or
  ``federated_token_file`` (a token a platform writes and rotates, read afresh each time):
  sign in as an application, for scheduled jobs. Never interactive; each token is asked
  with a new assertion, and the key stays in its file
  (:mod:`bastion.client.signin.application`).
- ``proxy``, ``timeout`` (seconds), ``ca_bundle`` (a PEM file), ``retries``: session options
  for every request, sign-in included; the profile's otherwise. ``HTTPS_PROXY``,
  ``HTTP_PROXY`` and ``NO_PROXY`` apply when no proxy is given. A profile's proxy password
  is kept sealed, apart from the tokens (:mod:`bastion.client.profile_secrets`).
- ``prompt``: a :class:`~bastion.client.prompt.Prompt` that asks, shows and opens the
  browser (default: the terminal and the system browser).
- ``config_dir``: where profiles, the token caches and cached catalogs live (default
  ``$BASTION_CONFIG_DIR``, else ``~/.config/bastion``).

Errors are :class:`~bastion.client.errors.ClientError` and its subclasses, each with an
``exit_code`` and a ``hint``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bastion.client.errors import (
    ClientError,
    ConfigError,
    ConflictError,
    IssuerMismatch,
    ListingIncomplete,
    NetworkError,
    NotFoundError,
    PermissionDenied,
    ProxyError,
    ServerError,
    SignInFailed,
    SignInRequired,
    StepUpRequired,
    UsageError,
)

if TYPE_CHECKING:
    from bastion.client.cache import Account
    from bastion.client.catalog import CommandInfo
    from bastion.client.connection import Connection, connect, status
    from bastion.client.paging import Listing, Page
    from bastion.client.profiles import (
        Profile,
        add_profile,
        current_profile,
        get_profile,
        list_profiles,
        remove_profile,
        use_profile,
    )
    from bastion.client.prompt import Prompt, TerminalPrompt
    from bastion.client.report import Status

_LAZY = {
    "connect": "bastion.client.connection",
    "status": "bastion.client.connection",
    "Connection": "bastion.client.connection",
    "Status": "bastion.client.report",
    "Account": "bastion.client.cache",
    "CommandInfo": "bastion.client.catalog",
    "Listing": "bastion.client.paging",
    "Page": "bastion.client.paging",
    "Profile": "bastion.client.profiles",
    "add_profile": "bastion.client.profiles",
    "current_profile": "bastion.client.profiles",
    "get_profile": "bastion.client.profiles",
    "list_profiles": "bastion.client.profiles",
    "remove_profile": "bastion.client.profiles",
    "use_profile": "bastion.client.profiles",
    "Prompt": "bastion.client.prompt",
    "TerminalPrompt": "bastion.client.prompt",
}

__all__ = [
    "Account",
    "ClientError",
    "CommandInfo",
    "ConfigError",
    "ConflictError",
    "Connection",
    "IssuerMismatch",
    "Listing",
    "ListingIncomplete",
    "NetworkError",
    "NotFoundError",
    "Page",
    "PermissionDenied",
    "Profile",
    "Prompt",
    "ProxyError",
    "ServerError",
    "SignInFailed",
    "SignInRequired",
    "Status",
    "StepUpRequired",
    "TerminalPrompt",
    "UsageError",
    "add_profile",
    "connect",
    "current_profile",
    "get_profile",
    "list_profiles",
    "remove_profile",
    "status",
    "use_profile",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion.client' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
