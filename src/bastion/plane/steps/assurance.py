"""How strong and how recent the caller's sign-in must be: RFC 9470 (OAuth 2.0 Step Up
Authentication Challenge). Both refusals are a 401 with ``insufficient_user_authentication``
and the ``acr_values`` (and ``max_age``) a new sign-in must meet (section 3)."""

from __future__ import annotations

from bastion.authority.sessions import ACR_TWO_FACTORS, SECOND_FACTOR_METHODS
from bastion.core.text import human_duration
from bastion.plane.call import Call
from bastion.plane.command_errors import StepUpRequired


def require_two_factors(call: Call) -> None:
    """A8 (docs/decisions/0018): a role holder's token must come from a sign-in with a
    second factor. Roles are read at each command, so a role granted after a password-only
    sign-in finds such a token here: RFC 9470 asks for the second factor. This runs before
    authorization, so such a caller learns what to do rather than what is denied."""
    caller = call.caller
    if caller.grants and not SECOND_FACTOR_METHODS & set(caller.amr):
        raise StepUpRequired(
            "your account holds an administrative role, which needs a sign-in with a "
            "second factor.",
            acr_values=ACR_TWO_FACTORS,
        )


def step_up(call: Call) -> None:
    """A sensitive command needs a second factor younger than the tenant's window."""
    spec, caller = call.spec, call.caller
    window = caller.tenant.policy.step_up_window
    if not spec.sensitive:
        return
    if caller.acr != ACR_TWO_FACTORS or call.now - caller.auth_time > window:
        raise StepUpRequired(
            f"{spec.name} needs a second factor from the last {human_duration(window)}.",
            max_age=window,
            acr_values=ACR_TWO_FACTORS,
        )
