"""``bastion profile list|add|use|remove``: the named profiles, each a server, a tenant, a
sign-in method and session options (S3, S15). None of them needs the server, except that
``remove`` revokes the profile's sign-in there first when it can."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from bastion.cli.flags import SessionFlags, add_output_options, add_session_options
from bastion.cli.render.records import OutputFlags, write_records
from bastion.client.errors import ClientError

METHODS = ("auto", "browser", "device", "terminal")


def register(commands: Any) -> None:
    profile = commands.add_parser("profile", help="named profiles: a server, a tenant, options")
    sub = profile.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="every profile, the current one marked")
    add_output_options(listing)
    listing.set_defaults(handler=lambda args: run_list(ListOptions.from_args(args)))

    add = sub.add_parser("add", help="add a profile (or change one, with --replace)")
    add.add_argument("name", help="the profile's name, e.g. prod")
    add.add_argument("--url", required=True, help="the server's base URL")
    add.add_argument("--tenant", required=True, help="the tenant's short name")
    add.add_argument("--method", choices=METHODS, default="auto", help="sign-in method")
    add_session_options(add.add_argument_group("session options"))
    add.add_argument("--current", action="store_true", help="make it the current profile")
    add.add_argument("--replace", action="store_true", help="replace a profile of that name")
    add.set_defaults(handler=lambda args: run_add(AddOptions.from_args(args)))

    use = sub.add_parser("use", help="make a profile the current one")
    use.add_argument("name")
    use.set_defaults(handler=lambda args: run_use(NameOptions(args.name)))

    remove = sub.add_parser(
        "remove", help="remove a profile: its sign-in is revoked at the server, its tokens wiped"
    )
    remove.add_argument("name")
    remove.set_defaults(handler=lambda args: run_remove(NameOptions(args.name)))


@dataclass(frozen=True)
class ListOptions:
    output: OutputFlags

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ListOptions:
        return cls(output=OutputFlags.from_args(args))


def run_list(options: ListOptions) -> int:
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
    write_records(rows, options.output, listing=True)
    return 0


@dataclass(frozen=True)
class AddOptions:
    name: str
    url: str
    tenant: str
    method: str
    session: SessionFlags
    current: bool
    replace: bool
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AddOptions:
        return cls(
            name=args.name,
            url=args.url,
            tenant=args.tenant,
            method=args.method,
            session=SessionFlags.from_args(args),
            current=args.current,
            replace=args.replace,
        )


def run_add(options: AddOptions) -> int:
    from bastion.client import profiles

    session = options.session
    added = profiles.add_profile(
        options.name,
        options.url,
        options.tenant,
        method=options.method,
        proxy=session.proxy,
        timeout=session.timeout,
        ca_bundle=session.ca_bundle,
        retries=session.retries,
        make_current=True if options.current else None,
        replace_existing=options.replace,
    )
    state = "current" if added.current else "not current: 'bastion profile use' switches"
    print(f"Profile '{added.name}' for {added.issuer} saved ({state}).", file=options.err)
    return 0


@dataclass(frozen=True)
class NameOptions:
    """``profile use NAME`` and ``profile remove NAME``."""

    name: str
    err: TextIO = field(default_factory=lambda: sys.stderr)


def run_use(options: NameOptions) -> int:
    from bastion.client import profiles

    chosen = profiles.use_profile(options.name)
    print(f"Profile '{chosen.name}' ({chosen.issuer}) is now current.", file=options.err)
    return 0


def run_remove(options: NameOptions) -> int:
    from bastion.cli.client_side.open_connection import open_connection
    from bastion.client import profiles

    name = options.name
    profile = profiles.get_profile(name)
    ended = ""
    conn = open_connection(SessionFlags(non_interactive=True), profile=name)
    try:
        signed_in = conn.status().signed_in
        conn.disconnect()
        ended = " Its sign-in was revoked." if signed_in else ""
    except ClientError as exc:
        print(
            f"bastion: warning: the sign-in of '{name}' could not be revoked at the "
            f"server ({exc.detail.rstrip('.')}); it ends by itself at its lifetime.",
            file=options.err,
        )
    finally:
        conn.close()
    profiles.remove_profile(name)
    print(
        f"Profile '{profile.name}' ({profile.issuer}) removed; its tokens and key were wiped."
        + ended,
        file=options.err,
    )
    return 0
