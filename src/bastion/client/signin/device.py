"""Sign-in with a device code, RFC 8628: for terminals with no browser (SSH, notebooks).

The code and the link are shown (section 3.3); the person approves on any device while this
side polls the token endpoint every ``interval`` seconds, five more after each ``slow_down``
(section 3.5), until tokens arrive, the person declines, or the code expires.

For a step-up, ``max_age`` and ``acr_values`` are sent with the device authorization request
as they are with an authorization request; the approval page then asks the approver's second
factor again when the browser's sign-in is too old or too weak. (An authority that ignored
them would approve with the existing sign-in; the service would refuse the renewed token
again, and the client raises ``StepUpRequired`` rather than loop.)
"""

from __future__ import annotations

import time

from bastion.client.errors import SignInFailed
from bastion.client.http import json_body, require_json
from bastion.client.oauth import (
    CLIENT_ID,
    SCOPE,
    TokenSet,
    check_token_response,
    oauth_failure,
)
from bastion.client.signin import FlowContext, SignInRequest

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0


def sign_in(ctx: FlowContext, request: SignInRequest) -> TokenSet:
    form = {"client_id": CLIENT_ID, "scope": SCOPE}
    if request.resource:
        form["resource"] = request.resource
    if request.max_age is not None:
        form["max_age"] = str(request.max_age)
    if request.acr_values:
        form["acr_values"] = request.acr_values
    response = ctx.http.request("POST", ctx.discovery.device_authorization_endpoint, data=form)
    if response.status_code != 200:
        raise oauth_failure(response.status_code, json_body(response), "the device sign-in")
    start = require_json(response, "the device authorization endpoint")
    user_code = str(start["user_code"])
    where = str(start["verification_uri"])
    complete = start.get("verification_uri_complete")
    why = request.why(ctx.discovery.issuer)
    lines = [f"{why}: open {where} on any device and enter the code {user_code}"]
    if complete:
        lines.append(f"(or open {complete})")
    ctx.prompt.show("\n".join(lines))
    interval = float(start.get("interval") or 5)
    deadline = time.monotonic() + float(start.get("expires_in") or 600)
    while True:
        ctx.sleep(interval)
        if time.monotonic() > deadline:
            raise SignInFailed(
                "the device code expired before the sign-in was approved.",
                hint="Sign in again and enter the new code.",
            )
        sent = time.time()
        poll = ctx.http.request(
            "POST",
            ctx.discovery.token_endpoint,
            data={"client_id": CLIENT_ID, "grant_type": GRANT, "device_code": start["device_code"]},
        )
        body = json_body(poll)
        if poll.status_code == 200 and body is not None and "access_token" in body:
            return check_token_response(
                body, issuer=ctx.discovery.issuer, resource=request.resource, sent=sent
            )
        error = (body or {}).get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
            continue
        if error == "access_denied":
            raise SignInFailed("the sign-in was declined on the approval page.")
        if error == "expired_token":
            raise SignInFailed(
                "the device code expired before the sign-in was approved.",
                hint="Sign in again and enter the new code.",
            )
        raise oauth_failure(poll.status_code, body, "the device sign-in")
