"""Token signing keys: one ES256 key per tenant, published as a JWKS.

Private keys are sealed at rest (AES-GCM under the master key, bound to their ``kid``).
Several keys may be published at once so that rotation can overlap; only the ``active`` one
signs. Keys never change once written, so a process may cache them for its lifetime.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from cryptography.exceptions import InvalidTag
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Connection, insert, inspect, select

from bastion.core.errors import NotFound
from bastion.core.secrets_at_rest import Keyring, random_token
from bastion.store.schema import signing_keys

ALGORITHM = "ES256"
_PURPOSE = "signing-key"


def create_signing_key(conn: Connection, keyring: Keyring, tenant_id: str, now: float) -> str:
    kid = random_token(12)
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    private = json.dumps(key.as_dict(private=True)).encode()
    conn.execute(
        insert(signing_keys).values(
            kid=kid,
            tenant_id=tenant_id,
            alg=ALGORITHM,
            private_sealed=keyring.seal(_PURPOSE, private, kid.encode()),
            public_jwk=key.as_dict(private=False),
            active=True,
            created_at=now,
        )
    )
    return kid


def opens_stored_keys(conn: Connection, keyring: Keyring) -> bool:
    """Whether ``keyring`` opens the signing keys this database holds (True while it holds
    none). Every process of one deployment must hold the same master key: one started with
    a fresh key would sign nothing, find no refresh token, and sign the audit chain's head
    with a key the others cannot verify."""
    if not inspect(conn).has_table(signing_keys.name):
        return True  # a database not created yet
    row = conn.execute(select(signing_keys.c.kid, signing_keys.c.private_sealed).limit(1)).first()
    if row is None:
        return True
    try:
        keyring.open(_PURPOSE, row.private_sealed, row.kid.encode())
    except InvalidTag:
        return False
    return True


class SigningKeys:
    """Per-process cache of each tenant's keys."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._lock = threading.Lock()
        self._active: dict[str, ECKey] = {}
        self._public: dict[str, KeySet] = {}

    def active_key(self, conn: Connection, tenant_id: str) -> ECKey:
        key = self._active.get(tenant_id)
        if key is not None:
            return key
        row = conn.execute(
            select(signing_keys)
            .where(signing_keys.c.tenant_id == tenant_id, signing_keys.c.active.is_(True))
            .order_by(signing_keys.c.created_at.desc())
        ).first()
        if row is None:
            raise NotFound("the tenant has no signing key.")
        private = self._keyring.open(_PURPOSE, row.private_sealed, row.kid.encode())
        key = ECKey.import_key(json.loads(private))
        with self._lock:
            self._active[tenant_id] = key
        return key

    def public_keys(self, conn: Connection, tenant_id: str, *, refresh: bool = False) -> KeySet:
        keyset = self._public.get(tenant_id)
        if keyset is not None and not refresh:
            return keyset
        rows = conn.execute(
            select(signing_keys.c.public_jwk).where(signing_keys.c.tenant_id == tenant_id)
        )
        keyset = KeySet.import_key_set({"keys": [r.public_jwk for r in rows]})
        with self._lock:
            self._public[tenant_id] = keyset
        return keyset

    def jwks(self, conn: Connection, tenant_id: str) -> dict[str, Any]:
        rows = conn.execute(
            select(signing_keys.c.public_jwk).where(signing_keys.c.tenant_id == tenant_id)
        )
        return {"keys": [r.public_jwk for r in rows]}
