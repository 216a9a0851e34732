"""``bastion client create``: registering an OAuth client (an application that signs people
in through the authority), on the data directory or database directly.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bastion.cli.operator.storage import (
    add_storage_options,
    open_authority,
)


def register(commands: Any) -> None:
    _register_client(commands)


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
