"""``bastion client create``: registering an OAuth client (an application that signs people
in through the authority), on the data directory or database directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from bastion.cli.operator.storage import StorageFlags, add_storage_options


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
    create.set_defaults(handler=lambda args: run_create(CreateOptions.from_args(args)))


@dataclass(frozen=True)
class CreateOptions:
    tenant: str
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    confidential: bool
    storage: StorageFlags
    out: TextIO = field(default_factory=lambda: sys.stdout)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CreateOptions:
        return cls(
            tenant=args.tenant,
            client_id=args.client_id,
            name=args.name,
            redirect_uris=tuple(args.redirect_uri),
            grant_types=tuple(args.grant_type),
            confidential=args.confidential,
            storage=StorageFlags.from_args(args),
        )


def run_create(options: CreateOptions) -> int:
    from bastion.authority.client_registration import register_client
    from bastion.directory.tenants import get_tenant

    auth = options.storage.open_authority()
    with auth.store.begin() as conn:
        tenant = get_tenant(conn, options.tenant)
        secret = register_client(
            conn,
            auth.keyring,
            tenant_id=tenant.id,
            client_id=options.client_id,
            name=options.name,
            redirect_uris=list(options.redirect_uris),
            grant_types=list(options.grant_types),
            confidential=options.confidential,
            first_party=False,
            now=auth.now(),
        )
    result = {"client_id": options.client_id, "client_secret": secret}
    print(json.dumps(result, indent=2), file=options.out)
    return 0
