"""The refresh token grant, RFC 6749 section 6, with rotation (RFC 9700 section 4.14.2).

A refresh may name any service of the tenant (RFC 8707 ``resource`` or ``/.default``): one
sign-in covers them all (S2). It may not widen the OpenID scopes consented at sign-in,
except ``openid``, ``profile`` and ``offline_access``, which MSAL sends on every request.
"""

from __future__ import annotations

from typing import Any

from bastion.authority.clients import GRANT_REFRESH_TOKEN
from bastion.authority.grants.grant import Grant, TokenRequest
from bastion.authority.grants.issue import load_subject, token_response
from bastion.authority.resources import ScopeRequest, parse_scope_request
from bastion.authority.tokens import redeem_refresh_token
from bastion.core.errors import InvalidRequest, InvalidScope

ALWAYS_ALLOWED = frozenset({"openid", "profile", "offline_access"})


class RefreshTokenGrant(Grant):
    """Section 6: a refresh token for new tokens; the token is rotated."""

    grant_type = GRANT_REFRESH_TOKEN
    parameters = frozenset({"refresh_token", "scope", "resource"})
    refusal = "This client may not use refresh tokens."

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        raw = request.text("refresh_token")
        if not raw:
            raise InvalidRequest("refresh_token is required.")
        # Validate what is asked before the token is spent, so a bad request costs nothing.
        asked = parse_scope_request(request.form.get("scope"), request.resources, request.audiences)
        redeemed = redeem_refresh_token(
            request.conn,
            request.auth.keyring,
            tenant=request.tenant,
            client=request.client,
            raw=raw,
            now=request.now,
        )
        granted = set(redeemed.scopes)
        wider = set(asked.oidc_scopes) - granted - ALWAYS_ALLOWED
        if wider:
            raise InvalidScope(
                f"scope {', '.join(sorted(wider))} was not granted at sign-in.",
                hint="Sign in again asking for it.",
            )
        scopes = asked.oidc_scopes if request.form.get("scope") else redeemed.scopes
        audience = asked.audience or redeemed.resource
        return token_response(
            request,
            subject=load_subject(request, redeemed.session_id),
            scopes=ScopeRequest(oidc_scopes=tuple(scopes), audience=audience),
            family_id=redeemed.family_id,
            next_refresh_token=redeemed.successor,
            next_stored=redeemed.successor_stored,
            granted_scopes=tuple(sorted(granted | (set(scopes) & ALWAYS_ALLOWED))),
        )
