"""Sign-in typed in the terminal: OAuth 2.0 for First-Party Applications (IETF draft -04).

Bastion's own first-party client (``bastion-cli``) asks the authorization challenge endpoint
(``authorization_challenge_endpoint`` in discovery; decision 0014) directly:

1. ``POST`` ``client_id``, ``scope``, ``resource``, PKCE ``code_challenge`` (S256),
   ``username`` and ``password``;
2. ``200 {"authorization_code"}`` when that is enough; ``403 insufficient_authorization``
   with an ``auth_session`` and ``required`` (``otp`` or ``recovery_code``) when a second
   factor is due: ``POST`` ``auth_session`` with the code typed. A wrong password or code is
   ``invalid_grant`` (asked again, a few times; a wrong code comes with a new
   ``auth_session``); ``access_denied`` ends the sign-in (a lock, a disabled account);
3. ``403 redirect_to_web``: the account must first register an authenticator, in a browser;
   the sign-in continues there (or with the device code where there is no display);
4. the code is redeemed at the token endpoint with its ``code_verifier`` and no
   ``redirect_uri``.

Every answer carries ``iss``; one naming another issuer is refused (T9). A step-up (RFC
9470) starts with the ``auth_session`` of the last token response (draft §6.1), kept in the
encrypted token cache, instead of the password: the authority then asks only for the second
factor, and the new code is for the same sign-in. An ``auth_session`` the authority no longer
takes (``invalid_session``: the sign-in ended, or another process used it) makes this sign-in
ask for the password instead. This module is the only one that knows the draft's details.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bastion.client.errors import IssuerMismatch, SignInFailed, UsageError
from bastion.client.http import json_body
from bastion.client.oauth import CLIENT_ID, SCOPE, TokenSet, oauth_failure, token_request
from bastion.client.signin import FlowContext, SignInRequest
from bastion.client.signin.pkce import pair

#: the authority bounds a sign-in (three passwords here, and a few codes per method before
#: a pause, decision 0019); this only stops a server that never does
MAX_ROUNDS = 20
PASSWORD_TRIES = 3
_OTP = re.compile(r"^\d{6,8}$")


class RedirectToWeb(Exception):
    """The authority wants this sign-in to continue in a browser."""


def sign_in(ctx: FlowContext, request: SignInRequest) -> TokenSet:
    endpoint = ctx.discovery.authorization_challenge_endpoint
    if not endpoint:
        raise UsageError(
            f"{ctx.discovery.issuer} offers no sign-in typed in the terminal.",
            hint="Use the browser or the device code (method='browser' or method='device').",
            cli_hint="Use the browser or the device code (bastion connect --method browser, "
            "or --method device).",
        )
    verifier, challenge = pair()
    first: dict[str, str] = {
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if request.resource:
        first["resource"] = request.resource
    if request.max_age is not None:
        first["max_age"] = str(request.max_age)
    if request.acr_values:
        first["acr_values"] = request.acr_values
    if request.known_client:
        first["known_client"] = request.known_client
    code, known_client = _rounds(ctx, endpoint, first, request)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    if request.resource:
        form["resource"] = request.resource
    tokens = token_request(
        ctx.http,
        ctx.discovery.token_endpoint,
        form,
        issuer=ctx.discovery.issuer,
        resource=request.resource,
        idempotent=False,
        what="redeeming the authorization code",
    )
    return replace(tokens, known_client=known_client or request.known_client)


def _rounds(
    ctx: FlowContext, endpoint: str, first: dict[str, str], request: SignInRequest
) -> tuple[str, str | None]:
    """The authorization code, and the ``known_client`` the authority gave with it."""
    username = request.username
    resuming = bool(request.auth_session)
    ctx.prompt.show(f"{request.why(ctx.discovery.issuer)}:")
    if request.auth_session:
        form = {**first, "auth_session": request.auth_session}
    else:
        username, form = _password_form(ctx, first, username)
    password_tries = 1
    for _ in range(MAX_ROUNDS):
        response = ctx.http.request("POST", endpoint, data=form, idempotent=False)
        body: dict[str, Any] = json_body(response) or {}
        if "iss" in body and body["iss"] != ctx.discovery.issuer:
            raise IssuerMismatch(
                "the terminal sign-in's answer", expected=ctx.discovery.issuer, received=body["iss"]
            )
        if response.status_code == 200 and body.get("authorization_code"):
            known = body.get("known_client")
            return str(body["authorization_code"]), str(known) if known else None
        error = body.get("error")
        description = str(body.get("error_description") or error or f"HTTP {response.status_code}")
        if error == "redirect_to_web":
            raise RedirectToWeb(description)
        if resuming and error == "invalid_session":
            # the sign-in the cached auth_session named is gone: sign in from the start
            resuming = False
            username, form = _password_form(ctx, first, username)
            continue
        resuming = False
        if body.get("auth_session") and error in ("insufficient_authorization", "invalid_grant"):
            if error == "invalid_grant":
                ctx.prompt.show(description)
            form = _second_factor_form(ctx, str(body["auth_session"]), body.get("required"))
            continue
        if error == "invalid_grant" and "password" in form and password_tries < PASSWORD_TRIES:
            ctx.prompt.show(description)
            username, form = _password_form(ctx, first, username)
            password_tries += 1
            continue
        if error in ("invalid_grant", "access_denied", "invalid_session"):
            raise SignInFailed(f"the sign-in was refused: {description}", problem=body)
        raise oauth_failure(response.status_code, body, "the terminal sign-in")
    raise SignInFailed(f"the sign-in needed more than {MAX_ROUNDS} steps; it was stopped.")


def _password_form(
    ctx: FlowContext, first: dict[str, str], default: str | None
) -> tuple[str, dict[str, str]]:
    asked = ctx.prompt.ask(f"User name [{default}]: " if default else "User name: ").strip()
    username = asked or default or ""
    if not username:
        raise SignInFailed("no user name was given.")
    password = ctx.prompt.ask(f"Password for {username}: ", secret=True)
    return username, {**first, "username": username, "password": password}


def _second_factor_form(ctx: FlowContext, auth_session: str, required: Any) -> dict[str, str]:
    if required == "recovery_code":
        typed = ctx.prompt.ask("Recovery code: ", secret=True).strip()
        return {"client_id": CLIENT_ID, "auth_session": auth_session, "recovery_code": typed}
    typed = ctx.prompt.ask("One-time code (or a recovery code): ").strip().replace(" ", "")
    field = "otp" if _OTP.match(typed) else "recovery_code"
    return {"client_id": CLIENT_ID, "auth_session": auth_session, field: typed}
