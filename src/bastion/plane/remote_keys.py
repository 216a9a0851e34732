"""The signing keys of a remote authority, for services served alone (docs/decisions/0010).

``bastion serve --service NAME --authority URL`` serves some services without the
authority. It shares the database (tenants, role groups, audit, cursors) but trusts a token
only through the keys its issuer publishes: for an issuer ``{URL}/t/{tenant}`` it reads
``{issuer}/.well-known/openid-configuration``, checks that the document's ``issuer`` is the
token's exactly and that its ``jwks_uri`` lies under ``URL``, and reads that JWKS.

Each issuer's keys are cached for :data:`TTL` seconds and fetched again when a token names a
``kid`` they lack (a rotation), but never more often than once in :data:`MIN_REFETCH`
seconds per issuer, so tokens with made-up key ids cannot make this process hammer the
authority. While the authority cannot be reached, the keys last fetched keep working for up
to :data:`MAX_STALE` seconds; an issuer with no usable keys is a 503 problem.

Fetching happens in :meth:`RemoteKeys.prefetch`, before a command opens its database
transaction, so that a wait on the network never holds a connection or a transaction open.
Validation, inside the transaction, only reads the cache (:meth:`RemoteKeys.keys`).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bastion.authority.issuer_keys import FetchMessages, IssuerKeyCache
from bastion.authority.parts import Authority
from bastion.authority.token_validation import unverified_claim
from bastion.core.clock import Clock
from bastion.core.errors import BastionError, InvalidToken
from bastion.directory.tenants import NAME_PATTERN, find_tenant

log = logging.getLogger("bastion.remote_keys")

#: how long fetched keys are used before they are fetched again
TTL = 300.0
#: the least time between two fetches for one issuer, whatever the tokens say
MIN_REFETCH = 5.0
#: how long past their last fetch keys keep working while the authority cannot be reached
MAX_STALE = 3600.0
#: short timeouts: a command waits seconds, never minutes, for an authority that is down
TIMEOUT = httpx.Timeout(3.0, connect=2.0)
#: more issuers than this and the cache starts over (tenants are few; this bounds memory)
MAX_ISSUERS = 10_000


class AuthorityUnavailable(BastionError):
    status = 503
    problem = "authority-unavailable"
    title = "Authority unavailable"


class RemoteKeys:
    """Per-process cache of the keys of one authority's issuers."""

    def __init__(
        self,
        authority_url: str,
        *,
        clock: Clock,
        tenant_exists: Callable[[str], bool],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.authority_url = authority_url
        #: every issuer this process trusts starts with this
        self.issuer_prefix = f"{authority_url}/t/"
        self._tenant_exists = tenant_exists
        self._transport = transport
        self._cache = IssuerKeyCache[BastionError](
            clock,
            self._download,
            unavailable=AuthorityUnavailable,
            untrusted=InvalidToken,  # an untrusted discovery document: no keys at all
            ttl=TTL,
            min_refetch=MIN_REFETCH,
            max_stale=MAX_STALE,
            max_issuers=MAX_ISSUERS,
            messages=FetchMessages[BastionError](
                log,
                fetched="fetched the keys of an issuer",
                unavailable="the authority could not be reached for keys",
                untrusted="the authority's discovery document is not trusted",
                error_text=lambda exc: exc.detail,
            ),
        )

    @classmethod
    def for_authority(cls, auth: Authority) -> RemoteKeys:
        assert auth.settings.authority_url is not None

        def tenant_exists(name: str) -> bool:
            with auth.store.read() as conn:
                return auth.tenants.get(name, lambda: find_tenant(conn, name)) is not None

        return cls(auth.settings.authority_url, clock=auth.clock, tenant_exists=tenant_exists)

    def tenant_name(self, issuer: str) -> str | None:
        """The tenant of an issuer of this authority, or None for any other issuer."""
        if not issuer.startswith(self.issuer_prefix):
            return None
        name = issuer[len(self.issuer_prefix) :]
        return name if NAME_PATTERN.match(name) else None

    def prefetch(self, token: str) -> None:
        """Have the keys for this token's issuer and key id at hand, fetching them if they are
        missing, old or lack the key id. Called outside any database transaction. Never
        raises: a failure is remembered, and :meth:`keys` reports it."""
        try:
            issuer = unverified_claim(token, "iss")
            kid = _unverified_kid(token)
        except InvalidToken:
            return  # refused with its reason by the validation
        name = self.tenant_name(issuer)
        if name is None or kid is None or not self._cache.due(issuer, kid):
            return
        try:
            if self._cache.entry(issuer) is None and not self._tenant_exists(name):
                return  # an unknown tenant is refused without asking the authority
        except BastionError:
            return  # the database is unavailable; the command will say so
        self._cache.prefetch(issuer, kid)

    def keys(self, issuer: str) -> KeySet:
        """The issuer's keys as last fetched; only the cache is read."""
        entry = self._cache.entry(issuer)
        if entry is None:
            raise AuthorityUnavailable(
                f"the keys of {issuer} have not been fetched from the authority yet.",
                hint="Try again in a moment.",
            )
        keys = self._cache.usable(entry)
        if keys is not None:
            return keys
        raise entry.error or AuthorityUnavailable(
            f"the keys of {issuer} are too old to be trusted and could not be fetched again.",
            hint="Check that the authority is running and reachable.",
        )

    def _download(self, issuer: str) -> KeySet:
        """The discovery document, checked, then the JWKS it names."""
        try:
            with httpx.Client(
                timeout=TIMEOUT, follow_redirects=False, transport=self._transport
            ) as client:
                document = self._json(client, f"{issuer}/.well-known/openid-configuration")
                if document.get("issuer") != issuer:
                    raise InvalidToken(
                        "The issuer's discovery document names another issuer.",
                    )
                jwks_uri = document.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(
                    self.authority_url + "/"
                ):
                    raise InvalidToken("The issuer publishes its keys outside the authority.")
                return KeySet.import_key_set(self._json(client, jwks_uri))  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise self._unavailable(f"could not be reached ({type(exc).__name__})") from exc
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise self._unavailable("published keys that could not be read") from exc

    def _json(self, client: httpx.Client, url: str) -> dict[str, Any]:
        response = client.get(url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise self._unavailable(f"answered {response.status_code} for {url}")
        body = response.json()
        if not isinstance(body, dict):
            raise self._unavailable(f"answered {url} with something other than a JSON object")
        return body

    def _unavailable(self, what: str) -> AuthorityUnavailable:
        return AuthorityUnavailable(
            f"the authority at {self.authority_url} {what}, so the token cannot be checked.",
            hint="Try again in a moment; if it persists, check that the authority is running "
            "and that --authority names its public URL.",
        )


def _unverified_kid(token: str) -> str | None:
    """The ``kid`` of the header, read only to decide whether to fetch keys."""
    try:
        segment = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) and kid else None
