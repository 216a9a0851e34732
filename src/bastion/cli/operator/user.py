"""``bastion user create|disable|enable|unlock|set-password|report|set-mfa``: accounts, on the data
directory or database directly, for the operator who runs the server (a first admin, a
locked-out one). The everyday admin surface is the directory service's commands.
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

MFA_CHOICES = ("disabled", "enabled", "enforced")


def register(commands: Any) -> None:
    _register_user(commands)


def _register_user(commands: Any) -> None:
    user = commands.add_parser("user", help="create and manage users")
    sub = user.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tenant", required=True)
        p.add_argument("upn", help="user principal name, e.g. alice@contoso")
        add_storage_options(p)

    create = sub.add_parser("create", help="create a user")
    common(create)
    create.add_argument("--display-name")
    create.add_argument(
        "--mfa", choices=MFA_CHOICES, default="enforced", help="MFA state (default: enforced)"
    )
    create.add_argument("--role", action="append", default=[], help="a role name (repeatable)")
    add_password_options(create)
    create.add_argument(
        "--no-password",
        action="store_true",
        help="create without a password (cannot sign in until one is set)",
    )
    create.set_defaults(handler=lambda args: run_create(CreateOptions.from_args(args)))

    for name, help_text in (
        ("disable", "disable a user and end their sessions"),
        ("enable", "enable a user"),
        ("unlock", "lift the blocks of a user's sign-in at once (they also lift by themselves)"),
    ):
        p = sub.add_parser(name, help=help_text)
        common(p)
        p.set_defaults(
            handler=lambda args: run_toggle(ToggleOptions(UserTarget.from_args(args), args.toggle)),
            toggle=name,
        )

    setpw = sub.add_parser("set-password", help="set a user's password")
    common(setpw)
    add_password_options(setpw)
    setpw.set_defaults(
        handler=lambda args: run_set_password(
            SetPasswordOptions(UserTarget.from_args(args), PasswordFlags.from_args(args))
        )
    )

    report = sub.add_parser(
        "report",
        help="list users whose name, display name or password fails today's rules",
    )
    report.add_argument("--tenant", required=True)
    add_storage_options(report)
    report.set_defaults(
        handler=lambda args: run_report(ReportOptions(args.tenant, StorageFlags.from_args(args)))
    )

    setmfa = sub.add_parser("set-mfa", help="set a user's MFA state")
    common(setmfa)
    setmfa.add_argument("state", choices=MFA_CHOICES)
    setmfa.add_argument(
        "--reset", action="store_true", help="also remove registered factors and recovery codes"
    )
    setmfa.set_defaults(
        handler=lambda args: run_set_mfa(
            SetMfaOptions(UserTarget.from_args(args), args.state, args.reset)
        )
    )


@dataclass(frozen=True)
class UserTarget:
    """The user a verb acts on: ``--tenant``, the UPN, and where the data is."""

    tenant: str
    upn: str
    storage: StorageFlags

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> UserTarget:
        return cls(args.tenant, args.upn, StorageFlags.from_args(args))


@dataclass(frozen=True)
class CreateOptions:
    target: UserTarget
    display_name: str | None
    mfa: str
    roles: tuple[str, ...]
    password: PasswordFlags | None  # None: --no-password
    out: TextIO = field(default_factory=lambda: sys.stdout)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CreateOptions:
        return cls(
            target=UserTarget.from_args(args),
            display_name=args.display_name,
            mfa=args.mfa,
            roles=tuple(args.role),
            password=None if args.no_password else PasswordFlags.from_args(args),
        )


def run_create(options: CreateOptions) -> int:
    from bastion.directory.tenants import get_tenant
    from bastion.server.bootstrap import new_user

    target = options.target
    auth = target.storage.open_authority()
    given = options.password
    password = None if given is None else given.read(prompt=f"password for {target.upn}")
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, target.tenant)
        user = new_user(
            auth,
            conn,
            tenant,
            upn=target.upn,
            display_name=options.display_name,
            password=password,
            mfa_state=options.mfa,
            roles=list(options.roles),
        )
    print(json.dumps(user.public(), indent=2), file=options.out)
    return 0


@dataclass(frozen=True)
class ReportOptions:
    tenant: str
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)


def run_report(options: ReportOptions) -> int:
    from bastion.directory import users
    from bastion.directory.tenants import get_tenant

    auth = options.storage.open_authority()
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, options.tenant)
        found = users.rule_problems(conn, tenant.id, tenant.name)
    report = [
        {
            "id": f.user_id,
            "userPrincipalName": f.upn,
            "displayName": f.display_name,
            "enabled": f.enabled,
            "problems": list(f.problems),
        }
        for f in found
    ]
    print(json.dumps(report, indent=2, ensure_ascii=False), file=options.out)
    return 0


@dataclass(frozen=True)
class ToggleOptions:
    """``disable``, ``enable`` or ``unlock`` (the verb, in ``toggle``)."""

    target: UserTarget
    toggle: str
    err: TextIO = field(default_factory=lambda: sys.stderr)


def run_toggle(options: ToggleOptions) -> int:
    from bastion.audit import events
    from bastion.authority import credentials
    from bastion.directory import users
    from bastion.directory.tenants import get_tenant
    from bastion.server.bootstrap import disable_user

    target, err = options.target, options.err
    auth = target.storage.open_authority()
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, target.tenant)
        user = users.require_user(conn, tenant.id, target.upn)
        if options.toggle == "disable":
            ended = disable_user(auth, conn, user)
            print(f"{user.upn} disabled; {ended} session(s) ended.", file=err)
        elif options.toggle == "enable":
            users.set_enabled(conn, user, True)
            print(f"{user.upn} enabled.", file=err)
        else:
            credentials.unlock(conn, user)
            events.record(
                conn,
                tenant_id=tenant.id,
                type="user.unlocked",
                outcome="success",
                now=auth.now(),
                target=user.upn,
                via="command line",
            )
            print(f"{user.upn} unlocked: the next sign-in is checked at once.", file=err)
    return 0


@dataclass(frozen=True)
class SetPasswordOptions:
    target: UserTarget
    password: PasswordFlags
    err: TextIO = field(default_factory=lambda: sys.stderr)


def run_set_password(options: SetPasswordOptions) -> int:
    from bastion.directory import users
    from bastion.directory.tenants import get_tenant
    from bastion.server.bootstrap import set_password

    target = options.target
    auth = target.storage.open_authority()
    password = options.password.read(prompt=f"new password for {target.upn}")
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, target.tenant)
        set_password(auth, conn, users.require_user(conn, tenant.id, target.upn), password)
    print(f"password of {target.upn} set.", file=options.err)
    return 0


@dataclass(frozen=True)
class SetMfaOptions:
    target: UserTarget
    state: str
    reset: bool
    err: TextIO = field(default_factory=lambda: sys.stderr)


def run_set_mfa(options: SetMfaOptions) -> int:
    from bastion.directory import users
    from bastion.directory.tenants import get_tenant

    target, state, reset = options.target, options.state, options.reset
    auth = target.storage.open_authority()
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, target.tenant)
        user = users.require_user(conn, tenant.id, target.upn)
        users.set_mfa_state(conn, user, state, reset_factors=reset)
        if reset:  # removed factors end every sign-in made with them (S5)
            from bastion.authority.sign_in_sessions import revoke_user_sessions

            revoke_user_sessions(conn, user.id, auth.now())
    print(
        f"MFA of {target.upn} is now {state}{' (factors removed)' if reset else ''}.",
        file=options.err,
    )
    return 0
