"""``bastion connect`` and ``bastion disconnect``: signing in and out (S1, S3, S8).

``connect`` is configure-and-sign-in: the URL, tenant, method and session options it is given
are saved in the profile (the tenant's name when none is named), which becomes the current
one, and the person signs in unless the profile's cache already holds a sign-in.

With ``--app-id`` and ``--certificate`` or ``--federated-token-file``, a scheduled job signs in
as an application instead (S7): nobody is asked anything, the profile keeps the app ID and
the file's path (never what it holds), and later commands of the profile ask their tokens
with a new assertion whenever they need one.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from bastion.cli.client_side.auth_status import local_time
from bastion.cli.client_side.profile import METHODS
from bastion.cli.flags import SessionFlags, add_global_options
from bastion.client.errors import ClientError, ConfigError, SignInRequired, UsageError

if TYPE_CHECKING:
    from bastion.client.connection import Connection
    from bastion.client.profiles import Profile


def register_connect(commands: Any) -> None:
    connect = commands.add_parser(
        "connect",
        help="sign in to a tenant (saving its profile) with the method that fits",
        description="Sign in to a tenant: one sign-in serves every service. The URL, tenant, "
        "method and session options given are saved in the profile, which becomes current.",
    )
    connect.add_argument("--url", help="the server's base URL, e.g. https://bastion.example.org")
    connect.add_argument("--tenant", help="the tenant's short name")
    connect.add_argument(
        "--method",
        choices=METHODS,
        help="auto (browser with a display, else device code), browser, device (a code to "
        "enter on any device), terminal (password, then one-time code, typed here)",
    )
    connect.add_argument(
        "--force", action="store_true", help="sign in again even if the profile is signed in"
    )
    app = connect.add_argument_group(
        "an application (a scheduled job: no password, no prompt)",
        "The profile keeps the app ID and the file's path; the key stays in its file. A PKCS#12 "
        "file's password is read from BASTION_CERTIFICATE_PASSWORD, never from an argument.",
    )
    app.add_argument("--app-id", metavar="ID", help="the application's ID (its client ID)")
    credential = app.add_mutually_exclusive_group()
    credential.add_argument(
        "--certificate",
        metavar="FILE",
        help="a PEM file with the private key and the certificate, or a PKCS#12 file",
    )
    credential.add_argument(
        "--federated-token-file",
        metavar="FILE",
        help="the file where the platform writes the workload's token (read again at every "
        "renewal)",
    )
    add_global_options(connect)
    connect.set_defaults(handler=lambda args: run_connect(ConnectOptions.from_args(args)))


def register_disconnect(commands: Any) -> None:
    disconnect = commands.add_parser(
        "disconnect",
        help="sign out: revoke the sign-in at the server and wipe the profile's tokens and key",
    )
    add_global_options(disconnect)
    disconnect.set_defaults(
        handler=lambda args: run_disconnect(DisconnectOptions(SessionFlags.from_args(args)))
    )


#: the session options a profile keeps
SESSION_SETTINGS = ("proxy", "timeout", "ca_bundle", "retries")


@dataclass(frozen=True)
class ConnectOptions:
    url: str | None
    tenant: str | None
    method: str | None
    force: bool
    session: SessionFlags
    err: TextIO = field(default_factory=lambda: sys.stderr)
    app_id: str | None = None
    certificate: str | None = None
    federated_token_file: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ConnectOptions:
        return cls(
            url=args.url,
            tenant=args.tenant,
            method=args.method,
            force=args.force,
            session=SessionFlags.from_args(args),
            app_id=args.app_id,
            certificate=args.certificate,
            federated_token_file=args.federated_token_file,
        )

    @property
    def application(self) -> bool:
        return any(
            v is not None for v in (self.app_id, self.certificate, self.federated_token_file)
        )

    def check_application(self) -> None:
        """``--app-id`` goes with one credential, and neither with ``--method``."""
        if not self.application:
            return
        if self.method:
            raise UsageError(
                "--method signs a person in; --app-id, --certificate and "
                "--federated-token-file an application.",
                hint="Give one or the other.",
            )
        if self.app_id is None:
            raise UsageError(
                "--certificate and --federated-token-file need --app-id.",
                hint="Give the application's ID (its client ID) with --app-id ID.",
            )
        if self.certificate is None and self.federated_token_file is None:
            raise UsageError(
                "--app-id needs the application's credential.",
                hint="Give --certificate FILE or --federated-token-file FILE.",
            )


@dataclass(frozen=True)
class DisconnectOptions:
    session: SessionFlags
    err: TextIO = field(default_factory=lambda: sys.stderr)


def run_connect(options: ConnectOptions) -> int:
    from bastion.cli.client_side.open_connection import open_connection
    from bastion.client import profiles

    session = options.session
    options.check_application()
    name: str | None = session.profile
    url, tenant = options.url, options.tenant
    if (url is None) != (tenant is None):
        raise UsageError("--url and --tenant go together.", hint="Give both, or neither.")
    base: Profile | None
    if url is not None and tenant is not None:  # the two go together
        url = profiles.check_url(url)
        name = name or _name_for(url, tenant)
        base = _by_name(name)
    elif name is not None:
        base = _by_name(name)
        if base is None:
            raise UsageError(
                f"there is no profile '{name}' yet.", hint="Give --url and --tenant to add it."
            )
    else:
        base = profiles.current_profile()
        if base is None:
            raise UsageError(
                "there is no profile yet.",
                hint="Give the server and tenant: bastion connect --url URL --tenant NAME.",
            )
        name = base.name
    saving = (
        url is not None or bool(options.method) or _session_given(session) or options.application
    )
    before = profiles.current_profile()
    wanted: dict[str, Any] = {
        "url": url or (base.url if base else ""),
        "tenant": tenant or (base.tenant if base else ""),
        "method": options.method or (base.method if base else "auto"),
        **{n: _pick(session, n, base) for n in SESSION_SETTINGS},
        **_application(options, base),
    }
    # The profile is saved (and made current) only once the sign-in has worked: a mistyped
    # URL or tenant must not leave a profile behind that refuses the corrected command.
    conn = (
        _unsaved_connection(session, name, wanted)
        if saving
        else open_connection(session, profile=name)
    )
    try:
        already = not options.force and conn.status().signed_in
        conn.sign_in(force=options.force)
        report = conn.status()
    except SignInRequired as exc:
        # nobody to ask (not a refused password or code, nor an application's credential)
        if type(exc) is SignInRequired and wanted.get("app_id") is None:
            exc.cli_hint = (
                "Run this bastion connect in a terminal (BASTION_INTERACTIVE=1 shows a "
                "device code without one)."
            )
        raise
    finally:
        conn.close()
    if saving:
        profiles.add_profile(name, make_current=True, replace_existing=True, **wanted)
    else:
        profiles.use_profile(name)
    who = report.account.username if report.account else "(unknown)"
    until = local_time(report.session_expires_at)
    current = "now current"
    if before is not None and before.name != name:
        current = f"now current in place of '{before.name}': bastion profile use {before.name}"
        current += " goes back"
    print(
        f"{'Already signed' if already else 'Signed'} in to {report.issuer} as {who} "
        f"(profile '{name}', {current}"
        + (f"; the sign-in lasts until {until}" if until else "")
        + ("; --force signs in again" if already else "")
        + ").",
        file=options.err,
    )
    return 0


def _unsaved_connection(session: SessionFlags, name: str, wanted: dict[str, Any]) -> Connection:
    """A connection with the settings the profile ``name`` will have, before it is saved;
    its sign-in goes to that profile's token cache."""
    import dataclasses

    from bastion.cli.client_side.open_connection import quiet_library_logs
    from bastion.client import files
    from bastion.client.connection import Connection
    from bastion.client.settings import resolve

    quiet_library_logs()
    if wanted.get("app_id"):  # an application has no sign-in method
        wanted = {k: v for k, v in wanted.items() if k != "method"}
    settings = resolve(files.config_dir_of(None), **wanted)
    settings = dataclasses.replace(settings, profile=name, slot=name)
    return Connection(settings, prompt=None, interactive=session.interactive)


def _by_name(name: str) -> Profile | None:
    from bastion.client import profiles

    try:
        return profiles.get_profile(name)
    except ConfigError:
        return None


def _name_for(url: str, tenant: str) -> str:
    """A profile for this server and tenant: the one there is, else one named after the
    tenant (an error when that name is another server's)."""
    from bastion.client import profiles

    for p in profiles.list_profiles():
        if (p.url, p.tenant) == (url, tenant):
            return p.name
    other = _by_name(tenant)
    if other is not None:
        raise UsageError(
            f"profile '{tenant}' is for {other.issuer}.",
            hint="Name a profile for this one with --profile NAME.",
        )
    return profiles.check_name(tenant)


def _application(options: ConnectOptions, base: Profile | None) -> dict[str, Any]:
    """The application the profile signs in as: the one given, else the profile's, unless
    a person's method is given (which makes the profile a person's again)."""
    if options.application:
        return {
            "app_id": options.app_id,
            "certificate": options.certificate,
            "federated_token_file": options.federated_token_file,
        }
    if options.method or base is None or base.app_id is None:
        return {}
    return {
        "app_id": base.app_id,
        "certificate": base.certificate,
        "federated_token_file": base.federated_token_file,
    }


def _session_given(session: SessionFlags) -> bool:
    return any(getattr(session, n) is not None for n in SESSION_SETTINGS)


def _pick(session: SessionFlags, name: str, base: Profile | None) -> Any:
    value = getattr(session, name)
    if value is not None:
        return value
    return getattr(base, name) if base else None


def run_disconnect(options: DisconnectOptions) -> int:
    from bastion.cli.client_side.open_connection import open_connection

    conn = open_connection(options.session)
    where = conn.issuer
    profile = conn.profile
    try:
        conn.disconnect()
    except ClientError as exc:
        raise type(exc)(
            f"the local tokens and key of {where} were wiped, but the sign-in could not be "
            f"revoked at the server: {exc.detail.rstrip('.')}.",
            hint="It ends by itself at its lifetime; to end it now, revoke it in the portal.",
        ) from exc
    print(
        f"Signed out of {where}"
        + (f" (profile '{profile}')" if profile else "")
        + ": the sign-in was revoked and the local tokens and key wiped.",
        file=options.err,
    )
    return 0
