"""Browsers and clients that have signed a user in before (decision 0019).

After a successful sign-in the browser gets a cookie (the terminal client a ``known_client``
value) holding, for each user it signed in, the user's id, the time and a keyed hash of both.
Presented again with that user's name, it exempts the attempt from the per-address throttle:
an attacker sharing the owner's address (an office, a carrier's NAT) cannot keep the owner
out. It never exempts from the account's own counter. The value proves nothing else and
grants nothing: it is not a session.
"""

from __future__ import annotations

from bastion.core.secrets_at_rest import Keyring, constant_time_equals

_PURPOSE = "known-client"
#: a browser stays known this long after its last sign-in
LIFETIME = 180 * 86400
#: users remembered per browser, the most recent first
MAX_USERS = 5
MAX_VALUE = 1024


def cookie_name(tenant_name: str) -> str:
    return f"__Host-bastion-known-{tenant_name}"


def _mac(keyring: Keyring, tenant_id: str, user_id: str, issued: int) -> str:
    return keyring.lookup_hash(_PURPOSE, f"{tenant_id}:{user_id}:{issued}")[:32]


def _entries(value: str | None) -> list[tuple[str, int, str]]:
    if not value or len(value) > MAX_VALUE:
        return []
    entries = []
    for part in value.split("~")[:MAX_USERS]:
        user_id, _, rest = part.partition(".")
        issued, _, mac = rest.partition(".")
        if user_id and issued.isdigit() and mac:
            entries.append((user_id, int(issued), mac))
    return entries


def knows(
    keyring: Keyring, tenant_id: str, user_id: str | None, value: str | None, now: float
) -> bool:
    """Whether ``value`` shows a sign-in of ``user_id`` in this tenant, not too long ago."""
    if user_id is None:
        return False
    for entry_user, issued, mac in _entries(value):
        if (
            entry_user == user_id
            and now - issued < LIFETIME
            and constant_time_equals(mac, _mac(keyring, tenant_id, user_id, issued))
        ):
            return True
    return False


def remember(keyring: Keyring, tenant_id: str, user_id: str, value: str | None, now: float) -> str:
    """``value`` with ``user_id`` (re)added first, for the answer of a successful sign-in."""
    issued = int(now)
    kept = [f"{u}.{i}.{m}" for u, i, m in _entries(value) if u != user_id and now - i < LIFETIME]
    fresh = f"{user_id}.{issued}.{_mac(keyring, tenant_id, user_id, issued)}"
    return "~".join([fresh, *kept][:MAX_USERS])


def known_users(keyring: Keyring, tenant_id: str, value: str | None, now: float) -> list[str]:
    """The users ``value`` shows signed in here (for a page asked before anyone signs in)."""
    return [
        user_id
        for user_id, _, _ in _entries(value)
        if knows(keyring, tenant_id, user_id, value, now)
    ]
