"""``bastion auth status``: who is signed in, where, until when, and where the cache key is
(S8). Exit 4 when not signed in, so a script can test it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from bastion.cli.flags import add_output_options, opt
from bastion.cli.render.records import OutputFlags, write_records

if TYPE_CHECKING:
    from bastion.client.report import Status


def register(commands: Any) -> None:
    auth = commands.add_parser("auth", help="who is signed in, where, until when")
    auth_sub = auth.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = auth_sub.add_parser(
        "status",
        help="who is signed in, where, until when, and where the cache key is "
        "(exit 4 when not signed in)",
    )
    status.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS)
    add_output_options(status)
    status.set_defaults(handler=lambda args: run(StatusOptions.from_args(args)))


@dataclass(frozen=True)
class StatusOptions:
    profile: str | None
    output: OutputFlags
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StatusOptions:
        return cls(profile=opt(args, "profile"), output=OutputFlags.from_args(args))


def run(options: StatusOptions) -> int:
    from bastion.cli.client_side.open_connection import quiet_library_logs
    from bastion.client import connection, profiles

    quiet_library_logs()
    if options.profile is None and profiles.current_profile() is None:
        print(
            "bastion: not signed in: there is no profile yet. Sign in with: "
            "bastion connect --url URL --tenant NAME",
            file=options.err,
        )
        return 4
    found = connection.status(options.profile)
    write_records(status_record(found), options.output, listing=False)
    if not found.signed_in:
        print(
            f"bastion: not signed in to {found.issuer}. Sign in with: bastion connect"
            + (f" --profile {found.profile}" if found.profile else ""),
            file=options.err,
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
        "signedInAt": local_time(account.auth_time) if account and account.auth_time else None,
        "signInEnds": local_time(found.session_expires_at),
        "accessTokens": {aud: local_time(at) for aud, at in sorted(found.access_expires.items())},
        "keyStorage": found.key_storage,
        "cache": found.cache_path,
    }


def local_time(epoch: float | None) -> str | None:
    """A time as ISO 8601 in the local zone: 2024-05-01T09:30:00+02:00."""
    if not epoch:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")
