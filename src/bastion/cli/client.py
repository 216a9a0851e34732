"""``bastion connect``, ``auth status``, ``disconnect`` and ``profile``: signing in and the
named profiles (S1, S3, S8, S15).

``connect`` is configure-and-sign-in: the URL, tenant, method and session options it is given
are saved in the profile (the tenant's name when none is named), which becomes the current
one, and the person signs in unless the profile's cache already holds a sign-in.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bastion.cli.options import (
    add_global_options,
    add_output_options,
    add_session_options,
    default_format,
    opt,
)
from bastion.client.errors import ClientError, ConfigError, SignInRequired, UsageError

if TYPE_CHECKING:
    from bastion.client.connection import Connection
    from bastion.client.profiles import Profile
    from bastion.client.report import Status

METHODS = ("auto", "browser", "device", "terminal")


def register(commands: Any) -> None:
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
    add_global_options(connect)
    connect.set_defaults(handler=_connect)

    auth = commands.add_parser("auth", help="who is signed in, where, until when")
    auth_sub = auth.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = auth_sub.add_parser(
        "status",
        help="who is signed in, where, until when, and where the cache key is "
        "(exit 4 when not signed in)",
    )
    status.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS)
    add_output_options(status)
    status.set_defaults(handler=_status)

    disconnect = commands.add_parser(
        "disconnect",
        help="sign out: revoke the sign-in at the server and wipe the profile's tokens and key",
    )
    add_global_options(disconnect)
    disconnect.set_defaults(handler=_disconnect)

    _register_profile(commands)


def _register_profile(commands: Any) -> None:
    profile = commands.add_parser("profile", help="named profiles: a server, a tenant, options")
    sub = profile.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="every profile, the current one marked")
    add_output_options(listing)
    listing.set_defaults(handler=_profile_list)

    add = sub.add_parser("add", help="add a profile (or change one, with --replace)")
    add.add_argument("name", help="the profile's name, e.g. prod")
    add.add_argument("--url", required=True, help="the server's base URL")
    add.add_argument("--tenant", required=True, help="the tenant's short name")
    add.add_argument("--method", choices=METHODS, default="auto", help="sign-in method")
    add_session_options(add.add_argument_group("session options"))
    add.add_argument("--current", action="store_true", help="make it the current profile")
    add.add_argument("--replace", action="store_true", help="replace a profile of that name")
    add.set_defaults(handler=_profile_add)

    use = sub.add_parser("use", help="make a profile the current one")
    use.add_argument("name")
    use.set_defaults(handler=_profile_use)

    remove = sub.add_parser(
        "remove", help="remove a profile: its sign-in is revoked at the server, its tokens wiped"
    )
    remove.add_argument("name")
    remove.set_defaults(handler=_profile_remove)


# -- connect / disconnect --------------------------------------------------------------


def _connect(args: argparse.Namespace) -> int:
    from bastion.cli.session import open_connection
    from bastion.client import profiles

    name: str | None = opt(args, "profile")
    url, tenant = args.url, args.tenant
    if (url is None) != (tenant is None):
        raise UsageError("--url and --tenant go together.", hint="Give both, or neither.")
    base: Profile | None
    if url is not None:
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
    saving = url is not None or bool(args.method) or _session_given(args)
    before = profiles.current_profile()
    wanted: dict[str, Any] = {
        "url": url or (base.url if base else ""),
        "tenant": tenant or (base.tenant if base else ""),
        "method": args.method or (base.method if base else "auto"),
        **{n: _pick(args, n, base) for n in ("proxy", "timeout", "ca_bundle", "retries")},
    }
    # The profile is saved (and made current) only once the sign-in has worked: a mistyped
    # URL or tenant must not leave a profile behind that refuses the corrected command.
    conn = (
        _unsaved_connection(args, name, wanted) if saving else open_connection(args, profile=name)
    )
    try:
        already = not args.force and conn.status().signed_in
        conn.sign_in(force=args.force)
        report = conn.status()
    except SignInRequired as exc:
        if type(exc) is SignInRequired:  # nobody to ask (not a refused password or code)
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
    until = _when(report.session_expires_at)
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
        file=sys.stderr,
    )
    return 0


def _unsaved_connection(args: argparse.Namespace, name: str, wanted: dict[str, Any]) -> Connection:
    """A connection with the settings the profile ``name`` will have, before it is saved;
    its sign-in goes to that profile's token cache."""
    import dataclasses

    from bastion.cli.options import interactive
    from bastion.cli.session import quiet_library_logs
    from bastion.client import files
    from bastion.client.connection import Connection
    from bastion.client.settings import resolve

    quiet_library_logs()
    settings = resolve(files.config_dir_of(None), **wanted)
    settings = dataclasses.replace(settings, profile=name, slot=name)
    return Connection(settings, prompt=None, interactive=interactive(args))


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


def _session_given(args: argparse.Namespace) -> bool:
    return any(opt(args, n) is not None for n in ("proxy", "timeout", "ca_bundle", "retries"))


def _pick(args: argparse.Namespace, name: str, base: Profile | None) -> Any:
    value = opt(args, name)
    if value is not None:
        return value
    return getattr(base, name) if base else None


def _disconnect(args: argparse.Namespace) -> int:
    from bastion.cli.session import open_connection

    conn = open_connection(args)
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
        file=sys.stderr,
    )
    return 0


# -- auth status -----------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    from bastion.cli.session import quiet_library_logs
    from bastion.client import profiles, report

    quiet_library_logs()
    if opt(args, "profile") is None and profiles.current_profile() is None:
        print(
            "bastion: not signed in: there is no profile yet. Sign in with: "
            "bastion connect --url URL --tenant NAME",
            file=sys.stderr,
        )
        return 4
    found = report.status(opt(args, "profile"))
    _write(args, status_record(found), listing=False)
    if not found.signed_in:
        print(
            f"bastion: not signed in to {found.issuer}. Sign in with: bastion connect"
            + (f" --profile {found.profile}" if found.profile else ""),
            file=sys.stderr,
        )
        return 4
    return 0


def status_record(found: Status) -> dict[str, Any]:
    account = found.account
    return {
        "profile": found.profile,
        "issuer": found.issuer,
        "url": found.url,
        "tenant": found.tenant,
        "signedIn": found.signed_in,
        "account": account.username if account else None,
        "method": found.method,
        "secondFactor": ("mfa" in account.amr or "otp" in account.amr) if account else None,
        "signedInAt": _when(account.auth_time) if account and account.auth_time else None,
        "signInEnds": _when(found.session_expires_at),
        "accessTokens": {aud: _when(at) for aud, at in sorted(found.access_expires.items())},
        "keyStorage": found.key_storage,
        "cache": found.cache_path,
    }


def _when(epoch: float | None) -> str | None:
    """A time as ISO 8601 in the local zone: 2024-05-01T09:30:00+02:00."""
    if not epoch:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


# -- profiles --------------------------------------------------------------------------


def _profile_list(args: argparse.Namespace) -> int:
    from bastion.client import profiles
    from bastion.client.http import redact

    rows = [
        {
            "current": p.current,
            "name": p.name,
            "url": p.url,
            "tenant": p.tenant,
            "method": p.method,
            "proxy": redact(p.proxy) if p.proxy else None,
            "timeout": p.timeout,
            "caBundle": p.ca_bundle,
            "retries": p.retries,
        }
        for p in profiles.list_profiles()
    ]
    _write(args, rows, listing=True)
    return 0


def _profile_add(args: argparse.Namespace) -> int:
    from bastion.client import profiles

    added = profiles.add_profile(
        args.name,
        args.url,
        args.tenant,
        method=args.method,
        proxy=opt(args, "proxy"),
        timeout=opt(args, "timeout"),
        ca_bundle=opt(args, "ca_bundle"),
        retries=opt(args, "retries"),
        make_current=True if args.current else None,
        replace_existing=args.replace,
    )
    state = "current" if added.current else "not current: 'bastion profile use' switches"
    print(f"Profile '{added.name}' for {added.issuer} saved ({state}).", file=sys.stderr)
    return 0


def _profile_use(args: argparse.Namespace) -> int:
    from bastion.client import profiles

    chosen = profiles.use_profile(args.name)
    print(f"Profile '{chosen.name}' ({chosen.issuer}) is now current.", file=sys.stderr)
    return 0


def _profile_remove(args: argparse.Namespace) -> int:
    from bastion.cli.session import open_connection
    from bastion.client import profiles

    profile = profiles.get_profile(args.name)
    ended = ""
    conn = open_connection(argparse.Namespace(non_interactive=True), profile=args.name)
    try:
        signed_in = conn.status().signed_in
        conn.disconnect()
        ended = " Its sign-in was revoked." if signed_in else ""
    except ClientError as exc:
        print(
            f"bastion: warning: the sign-in of '{args.name}' could not be revoked at the "
            f"server ({exc.detail.rstrip('.')}); it ends by itself at its lifetime.",
            file=sys.stderr,
        )
    finally:
        conn.close()
    profiles.remove_profile(args.name)
    print(
        f"Profile '{profile.name}' ({profile.issuer}) removed; its tokens and key were wiped."
        + ended,
        file=sys.stderr,
    )
    return 0


def _write(args: argparse.Namespace, value: Any, *, listing: bool) -> None:
    from bastion.cli.options import properties
    from bastion.cli.output import Writer, pick, query, resolve_properties

    fmt = opt(args, "output") or default_format()
    expression = opt(args, "query")
    if expression is not None:
        value = query(expression, value)
    picked = properties(args)
    if picked:
        sample = value[0] if isinstance(value, list) and value else value
        known = list(sample) if isinstance(sample, dict) else []
        value = pick(value, resolve_properties(picked, known))
    writer = Writer(fmt)
    if fmt == "table" and isinstance(value, dict):
        value = {k: _flat(v) for k, v in value.items()}
    if listing and isinstance(value, list) and expression is None:
        writer.page(value)
        writer.close()
    else:
        writer.value(value)


def _flat(value: Any) -> Any:
    """Access tokens by service, for a table: ``mail until 2024-05-01T09:30:00+02:00``."""
    if isinstance(value, dict):
        return ", ".join(f"{k.rsplit('/', 1)[-1]} until {v}" for k, v in value.items()) or None
    return value
