"""Sign-in in the system browser: authorization code with PKCE through a loopback redirect.

RFC 6749 section 4.1 with RFC 7636 (S256), RFC 8252 (native apps: the system browser, a
loopback redirect on an ephemeral port) and RFC 9207: the authorization response must carry
``iss`` equal to the issuer, checked before the code is used (T9). The redirect URI is
``http://127.0.0.1:{port}/callback``, which the ``bastion-cli`` client has registered with any
port (RFC 8252 section 7.3).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from bastion.client.errors import IssuerMismatch, SignInFailed
from bastion.client.oauth import CLIENT_ID, SCOPE, TokenSet, token_request
from bastion.client.signin import FlowContext, SignInRequest
from bastion.client.signin.loopback import Loopback
from bastion.client.signin.pkce import pair


def authorization_url(ctx: FlowContext, request: SignInRequest, **params: str) -> str:
    query = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": SCOPE,
        "code_challenge_method": "S256",
        **params,
    }
    if request.resource:
        query["resource"] = request.resource
    if request.max_age is not None:
        query["max_age"] = str(request.max_age)
    if request.acr_values:
        query["acr_values"] = request.acr_values
    if request.username:
        query["login_hint"] = request.username
    return f"{ctx.discovery.authorization_endpoint}?{urlencode(query)}"


def sign_in(ctx: FlowContext, request: SignInRequest) -> TokenSet:
    verifier, challenge = pair()
    state = secrets.token_urlsafe(24)
    issuer = ctx.discovery.issuer
    with Loopback(state) as listener:
        url = authorization_url(
            ctx,
            request,
            redirect_uri=listener.redirect_uri,
            state=state,
            code_challenge=challenge,
        )
        what = request.why(issuer)
        if ctx.prompt.open_url(url):
            ctx.prompt.show(f"{what}, in the browser window that opened.")
        else:
            ctx.prompt.show(f"{what}: open this address in a browser on this computer:\n  {url}")
        answer = listener.wait(ctx.wait)
    if answer is None:
        raise SignInFailed(
            f"the browser sign-in did not finish within {ctx.wait:g} seconds.",
            hint="Sign in again; over SSH or with no browser, use the device code "
            "(method='device').",
            cli_hint="Sign in again; over SSH or with no browser, use the device code "
            "(bastion connect --method device).",
        )
    # RFC 9207 section 2.4: compare iss before anything else in the response is used.
    if answer.get("iss") != issuer:
        raise IssuerMismatch(
            "the authorization response", expected=issuer, received=answer.get("iss")
        )
    if "error" in answer or "code" not in answer:
        description = answer.get("error_description") or answer.get("error") or "no code"
        raise SignInFailed(f"the sign-in did not complete: {description}.")
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": listener.redirect_uri,
        "code_verifier": verifier,
    }
    if request.resource:
        form["resource"] = request.resource
    # Never retried once sent: a code presented twice revokes the sign-in (RFC 6749 4.1.2).
    return token_request(
        ctx.http,
        ctx.discovery.token_endpoint,
        form,
        issuer=issuer,
        resource=request.resource,
        idempotent=False,
        what="redeeming the authorization code",
    )
