"""``bastion user create|disable|enable|set-password|report|set-mfa``: accounts, on the data
directory or database directly, for the operator who runs the server (a first admin, a
locked-out one). The everyday admin surface is the directory service's commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bastion.cli.operator.storage import (
    add_password_options,
    add_storage_options,
    open_authority,
    read_password,
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
    create.set_defaults(handler=_user_create)

    for name, help_text in (
        ("disable", "disable a user and end their sessions"),
        ("enable", "enable a user"),
        ("unlock", "lift the blocks of a user's sign-in at once (they also lift by themselves)"),
    ):
        p = sub.add_parser(name, help=help_text)
        common(p)
        p.set_defaults(handler=_user_toggle, toggle=name)

    setpw = sub.add_parser("set-password", help="set a user's password")
    common(setpw)
    add_password_options(setpw)
    setpw.set_defaults(handler=_user_set_password)

    report = sub.add_parser(
        "report",
        help="list users whose name, display name or password fails today's rules",
    )
    report.add_argument("--tenant", required=True)
    add_storage_options(report)
    report.set_defaults(handler=_user_report)

    setmfa = sub.add_parser("set-mfa", help="set a user's MFA state")
    common(setmfa)
    setmfa.add_argument("state", choices=MFA_CHOICES)
    setmfa.add_argument(
        "--reset", action="store_true", help="also remove registered factors and recovery codes"
    )
    setmfa.set_defaults(handler=_user_set_mfa)


def _user_create(args: argparse.Namespace) -> int:
    from bastion.directory.bootstrap import new_user
    from bastion.directory.tenants import get_tenant

    auth = open_authority(args)
    password = None if args.no_password else read_password(args, prompt=f"password for {args.upn}")
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, args.tenant)
        user = new_user(
            auth,
            conn,
            tenant,
            upn=args.upn,
            display_name=args.display_name,
            password=password,
            mfa_state=args.mfa,
            roles=args.role,
        )
    print(json.dumps(user.public(), indent=2))
    return 0


def _user_report(args: argparse.Namespace) -> int:
    from bastion.directory import users
    from bastion.directory.tenants import get_tenant

    auth = open_authority(args)
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, args.tenant)
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
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def _user_toggle(args: argparse.Namespace) -> int:
    from bastion.audit import events
    from bastion.directory import users
    from bastion.directory.bootstrap import disable_user
    from bastion.directory.tenants import get_tenant

    auth = open_authority(args)
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, args.tenant)
        user = users.require_user(conn, tenant.id, args.upn)
        if args.toggle == "disable":
            ended = disable_user(auth, conn, user)
            print(f"{user.upn} disabled; {ended} session(s) ended.", file=sys.stderr)
        elif args.toggle == "enable":
            users.set_enabled(conn, user, True)
            print(f"{user.upn} enabled.", file=sys.stderr)
        else:
            users.unlock(conn, user)
            events.record(
                conn,
                tenant_id=tenant.id,
                type="user.unlocked",
                outcome="success",
                now=auth.now(),
                target=user.upn,
                via="command line",
            )
            print(f"{user.upn} unlocked: the next sign-in is checked at once.", file=sys.stderr)
    return 0


def _user_set_password(args: argparse.Namespace) -> int:
    from bastion.directory import users
    from bastion.directory.bootstrap import set_password
    from bastion.directory.tenants import get_tenant

    auth = open_authority(args)
    password = read_password(args, prompt=f"new password for {args.upn}")
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, args.tenant)
        set_password(auth, conn, users.require_user(conn, tenant.id, args.upn), password)
    print(f"password of {args.upn} set.", file=sys.stderr)
    return 0


def _user_set_mfa(args: argparse.Namespace) -> int:
    from bastion.directory import users
    from bastion.directory.tenants import get_tenant

    auth = open_authority(args)
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, args.tenant)
        user = users.require_user(conn, tenant.id, args.upn)
        users.set_mfa_state(conn, user, args.state, reset_factors=args.reset)
        if args.reset:  # removed factors end every sign-in made with them (S5)
            from bastion.authority.sessions import revoke_user_sessions

            revoke_user_sessions(conn, user.id, auth.now())
    print(
        f"MFA of {args.upn} is now {args.state}{' (factors removed)' if args.reset else ''}.",
        file=sys.stderr,
    )
    return 0
