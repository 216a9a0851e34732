"""``bastion tenant create|set|show``: tenants and their sign-in policy, on the data
directory or database directly, for the operator who runs the server. The everyday admin
surface is the directory service's commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from bastion.cli.operator.storage import (
    PasswordFlags,
    StorageFlags,
    add_password_options,
    add_storage_options,
)
from bastion.core.errors import UsageError


def register(commands: Any) -> None:
    _register_tenant(commands)


def _policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--session-lifetime",
        type=int,
        metavar="SECONDS",
        help="absolute lifetime of a sign-in (at most 86400)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=int,
        metavar="SECONDS",
        help="a sign-in unused this long ends (at most 3600)",
    )
    parser.add_argument(
        "--access-token-lifetime",
        type=int,
        metavar="SECONDS",
        help="lifetime of access tokens (default 900)",
    )
    parser.add_argument(
        "--step-up-window",
        type=int,
        metavar="SECONDS",
        help="sensitive commands need a second factor younger than this",
    )
    parser.add_argument(
        "--allowed-methods",
        metavar="LIST",
        help="comma-separated second-factor methods users may use (totp)",
    )
    parser.add_argument(
        "--app-sensitive-role-groups",
        metavar="LIST",
        help="comma-separated role groups whose sensitive commands applications may run "
        "(none by default; '' for none)",
    )


POLICY_FLAGS = (
    "--session-lifetime",
    "--idle-timeout",
    "--access-token-lifetime",
    "--step-up-window",
    "--allowed-methods",
    "--app-sensitive-role-groups",
)


def policy_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The policy flags given, and only those, as ``TenantPolicy`` fields."""
    changes = {
        "session_lifetime": args.session_lifetime,
        "idle_timeout": args.idle_timeout,
        "access_token_lifetime": args.access_token_lifetime,
        "step_up_window": args.step_up_window,
    }
    if args.allowed_methods is not None:
        changes["allowed_methods"] = tuple(
            m.strip() for m in args.allowed_methods.split(",") if m.strip()
        )
    if args.app_sensitive_role_groups is not None:
        changes["app_sensitive_role_groups"] = tuple(
            g.strip() for g in args.app_sensitive_role_groups.split(",") if g.strip()
        )
    return {k: v for k, v in changes.items() if v is not None}


def _register_tenant(commands: Any) -> None:
    tenant = commands.add_parser("tenant", help="create and configure tenants")
    sub = tenant.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="create a tenant (with no accounts)")
    create.add_argument("name", help="URL name, e.g. contoso")
    create.add_argument("--display-name")
    create.add_argument(
        "--admin",
        metavar="UPN",
        help="also create this bootstrap admin: MFA enforced, password asked",
    )
    add_password_options(create, "the admin's password")
    _policy_options(create)
    add_storage_options(create)
    create.set_defaults(handler=lambda args: run_create(CreateOptions.from_args(args)))

    setp = sub.add_parser("set", help="change a tenant's sign-in policy")
    setp.add_argument("name")
    _policy_options(setp)
    add_storage_options(setp)
    setp.set_defaults(handler=lambda args: run_set(SetOptions.from_args(args)))

    show = sub.add_parser("show", help="print a tenant and its policy as JSON")
    show.add_argument("name")
    add_storage_options(show)
    show.set_defaults(
        handler=lambda args: run_show(ShowOptions(args.name, StorageFlags.from_args(args)))
    )


def _tenant_json(tenant: Any) -> str:
    return json.dumps(
        {
            "id": tenant.id,
            "name": tenant.name,
            "displayName": tenant.display_name,
            "policy": tenant.policy.to_json(),
        },
        indent=2,
    )


@dataclass(frozen=True)
class CreateOptions:
    name: str
    display_name: str | None
    admin: str | None
    password: PasswordFlags
    policy: dict[str, Any]
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CreateOptions:
        return cls(
            name=args.name,
            display_name=args.display_name,
            admin=args.admin,
            password=PasswordFlags.from_args(args),
            policy=policy_changes(args),
            storage=StorageFlags.from_args(args),
        )


def run_create(options: CreateOptions) -> int:
    from bastion.directory.tenants import TenantPolicy
    from bastion.server.bootstrap import new_tenant, new_user

    admin = options.admin
    auth = options.storage.open_authority()
    password = options.password.read(prompt=f"password for {admin}") if admin else None
    with auth.store.begin() as conn:
        tenant = new_tenant(
            auth,
            conn,
            name=options.name,
            display_name=options.display_name,
            policy=TenantPolicy(**options.policy),
        )
        if admin:
            new_user(
                auth,
                conn,
                tenant,
                upn=admin,
                display_name=None,
                password=password,
                mfa_state="enforced",
                roles=["Global Administrator"],
            )
    print(_tenant_json(tenant), file=options.out)
    _note_outlived(tenant.policy, options.err)
    if admin:
        print(f"{admin} must register an authenticator app at first sign-in.", file=options.err)
    return 0


@dataclass(frozen=True)
class SetOptions:
    name: str
    policy: dict[str, Any]
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SetOptions:
        return cls(args.name, policy_changes(args), StorageFlags.from_args(args))


def run_set(options: SetOptions) -> int:
    """Set the limits given, and only those."""
    from bastion.directory.tenants import get_tenant, set_policy

    changes = options.policy
    if not changes:
        raise UsageError("no limit to set.", hint=f"Give one or more of {', '.join(POLICY_FLAGS)}.")
    auth = options.storage.open_authority()
    with auth.store.begin() as conn:
        tenant = set_policy(conn, get_tenant(conn, options.name), **changes)
    print(_tenant_json(tenant), file=options.out)
    _note_outlived(tenant.policy, options.err)
    return 0


def _note_outlived(policy: Any, err: TextIO) -> None:
    for name in policy.outlived():
        print(
            f"note: the {name} is longer than the session lifetime "
            f"({policy.session_lifetime} s), which ends sign-ins first.",
            file=err,
        )


@dataclass(frozen=True)
class ShowOptions:
    name: str
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)


def run_show(options: ShowOptions) -> int:
    from bastion.directory.tenants import get_tenant

    auth = options.storage.open_authority()
    with auth.store.begin() as conn:
        print(_tenant_json(get_tenant(conn, options.name)), file=options.out)
    return 0
