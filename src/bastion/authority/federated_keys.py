"""The signing keys of the external issuers that applications' federated credentials name.

A federated credential (docs/decisions/0037) trusts another OpenID provider's token for an
application: a CI system, a Kubernetes cluster. The token endpoint checks such a token with
the keys that provider publishes: ``{issuer}/.well-known/openid-configuration`` is read, its
``issuer`` must be the registered one exactly, and the JWKS at its ``jwks_uri`` is read.
Both over HTTPS; plain HTTP only when the issuer's host is a loopback address (tests).
Redirects are not followed and answers are limited to :data:`MAX_BODY` bytes.

Only issuers registered on an application are ever fetched: the caller checks that before
asking (an assertion's ``iss`` cannot make the server fetch an arbitrary URL). Keys are
cached for :data:`TTL` seconds and fetched again when a token names a ``kid`` they lack, but
never more often than once in :data:`MIN_REFETCH` seconds per issuer, whatever the tokens
say. :meth:`FederatedKeys.prefetch` does the network part and is called before the token
endpoint opens its database transaction; :meth:`FederatedKeys.keys` only reads the cache.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bastion.authority.issuer_keys import FetchMessages, IssuerKeyCache
from bastion.core.clock import Clock
from bastion.core.config import fetchable

log = logging.getLogger("bastion.federated_keys")

#: how long fetched keys are used before they are fetched again
TTL = 900.0
#: the least time between two fetches for one issuer (an unknown ``kid`` asks for a refetch)
MIN_REFETCH = 60.0
#: a token request waits seconds, never minutes, for an issuer that is down
TIMEOUT = httpx.Timeout(3.0, connect=2.0)
#: the largest discovery document or JWKS read
MAX_BODY = 256 * 1024
#: more issuers than this and the cache starts over (bounds memory)
MAX_ISSUERS = 1_000


class FederatedKeysUnavailable(Exception):
    """The issuer's keys could not be had; the message says why (for the refusal)."""


class FederatedKeys:
    """Per-process cache of external issuers' keys; owned by the server's context."""

    def __init__(self, clock: Clock, *, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport
        self._cache = IssuerKeyCache(
            clock,
            self._download,
            unavailable=FederatedKeysUnavailable,
            ttl=TTL,
            min_refetch=MIN_REFETCH,
            max_stale=2 * TTL,
            max_issuers=MAX_ISSUERS,
            messages=FetchMessages(
                log,
                fetched="fetched the keys of a federated issuer",
                unavailable="the keys of a federated issuer could not be fetched",
            ),
        )

    def prefetch(self, issuer: str, kid: str | None) -> None:
        """Have the issuer's keys at hand (and ``kid`` among them, if it exists there).
        Called outside any database transaction, only for a registered issuer. Never raises:
        a failure is remembered and :meth:`keys` reports it."""
        self._cache.prefetch(issuer, kid)

    def keys(self, issuer: str) -> KeySet:
        """The issuer's keys as last fetched (cache only), or why there are none."""
        entry = self._cache.entry(issuer)
        if entry is None:
            raise FederatedKeysUnavailable(f"the keys of {issuer} have not been fetched")
        keys = self._cache.usable(entry)
        if keys is not None:
            return keys
        why = str(entry.error) if entry.error is not None else ""
        raise FederatedKeysUnavailable(why or f"the keys of {issuer} are too old")

    def forget(self) -> None:
        self._cache.forget()

    def _download(self, issuer: str) -> KeySet:
        if not fetchable(issuer):
            raise FederatedKeysUnavailable(f"the issuer {issuer} is not an https URL")
        try:
            with httpx.Client(
                timeout=TIMEOUT, follow_redirects=False, transport=self._transport, trust_env=False
            ) as client:
                document = _json(client, issuer.rstrip("/") + "/.well-known/openid-configuration")
                if document.get("issuer") != issuer:
                    raise FederatedKeysUnavailable(
                        f"the discovery document of {issuer} names another issuer"
                    )
                jwks_uri = document.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not fetchable(jwks_uri):
                    raise FederatedKeysUnavailable(
                        f"the discovery document of {issuer} names no https jwks_uri"
                    )
                return KeySet.import_key_set(_json(client, jwks_uri))  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise FederatedKeysUnavailable(
                f"the issuer {issuer} could not be reached ({type(exc).__name__})"
            ) from exc
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise FederatedKeysUnavailable(
                f"the issuer {issuer} published keys that could not be read"
            ) from exc


def _json(client: httpx.Client, url: str) -> dict[str, Any]:
    with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise FederatedKeysUnavailable(f"{url} answered {response.status_code}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_BODY:
                raise FederatedKeysUnavailable(f"{url} answered with too much")
    value = json.loads(bytes(body))
    if not isinstance(value, dict):
        raise FederatedKeysUnavailable(f"{url} answered with something other than a JSON object")
    return value
