"""Bootstrap administration on the data directory or database: tenants, users, clients.

These act on the store directly, for the operator who runs the server. The everyday admin
surface is the directory service's commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bastion.cli.common import (
    add_password_options,
    add_storage_options,
    open_authority,
    read_password,
)
from bastion.errors import UsageError

MFA_CHOICES = ("disabled", "enabled", "enforced")


def register(commands: Any) -> None:
    _register_tenant(commands)
    _register_user(commands)
    _register_client(commands)


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


POLICY_FLAGS = (
    "--session-lifetime",
    "--idle-timeout",
    "--access-token-lifetime",
    "--step-up-window",
    "--allowed-methods",
)


def _policy_changes(args: argparse.Namespace) -> dict[str, Any]:
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
    create.set_defaults(handler=_tenant_create)

    setp = sub.add_parser("set", help="change a tenant's sign-in policy")
    setp.add_argument("name")
    _policy_options(setp)
    add_storage_options(setp)
    setp.set_defaults(handler=_tenant_set)

    show = sub.add_parser("show", help="print a tenant and its policy as JSON")
    show.add_argument("name")
    add_storage_options(show)
    show.set_defaults(handler=_tenant_show)


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


def _tenant_create(args: argparse.Namespace) -> int:
    from bastion.directory.bootstrap import new_tenant, new_user
    from bastion.directory.tenants import TenantPolicy

    auth = open_authority(args)
    password = read_password(args, prompt=f"password for {args.admin}") if args.admin else None
    with auth.store.begin() as conn:
        tenant = new_tenant(
            auth,
            conn,
            name=args.name,
            display_name=args.display_name,
            policy=TenantPolicy(**_policy_changes(args)),
        )
        if args.admin:
            new_user(
                auth,
                conn,
                tenant,
                upn=args.admin,
                display_name=None,
                password=password,
                mfa_state="enforced",
                roles=["Global Administrator"],
            )
    print(_tenant_json(tenant))
    _note_outlived(tenant.policy)
    if args.admin:
        print(f"{args.admin} must register an authenticator app at first sign-in.", file=sys.stderr)
    return 0


def _tenant_set(args: argparse.Namespace) -> int:
    """Set the limits given, and only those."""
    from bastion.directory.tenants import get_tenant, set_policy

    changes = _policy_changes(args)
    if not changes:
        raise UsageError("no limit to set.", hint=f"Give one or more of {', '.join(POLICY_FLAGS)}.")
    auth = open_authority(args)
    with auth.store.begin() as conn:
        tenant = set_policy(conn, get_tenant(conn, args.name), **changes)
    print(_tenant_json(tenant))
    _note_outlived(tenant.policy)
    return 0


def _note_outlived(policy: Any) -> None:
    for name in policy.outlived():
        print(
            f"note: the {name} is longer than the session lifetime "
            f"({policy.session_lifetime} s), which ends sign-ins first.",
            file=sys.stderr,
        )


def _tenant_show(args: argparse.Namespace) -> int:
    from bastion.directory.tenants import get_tenant

    auth = open_authority(args)
    with auth.store.begin() as conn:
        print(_tenant_json(get_tenant(conn, args.name)))
    return 0


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


def _register_client(commands: Any) -> None:
    client = commands.add_parser("client", help="register OAuth clients")
    sub = client.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser(
        "create", help="register a client; a confidential one's secret is printed once"
    )
    create.add_argument("--tenant", required=True)
    create.add_argument("client_id")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", default=[])
    create.add_argument(
        "--grant-type",
        action="append",
        default=[],
        help="authorization_code, refresh_token, or "
        "urn:ietf:params:oauth:grant-type:device_code (repeatable)",
    )
    create.add_argument(
        "--confidential",
        action="store_true",
        help="give the client a secret (needed for introspection)",
    )
    add_storage_options(create)
    create.set_defaults(handler=_client_create)


def _client_create(args: argparse.Namespace) -> int:
    from bastion.authority.clients import register_client
    from bastion.directory.tenants import get_tenant

    auth = open_authority(args)
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, args.tenant)
        secret = register_client(
            conn,
            auth.keyring,
            tenant_id=tenant.id,
            client_id=args.client_id,
            name=args.name,
            redirect_uris=args.redirect_uri,
            grant_types=args.grant_type,
            confidential=args.confidential,
            first_party=False,
            now=auth.now(),
        )
    print(json.dumps({"client_id": args.client_id, "client_secret": secret}, indent=2))
    return 0
