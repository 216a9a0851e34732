"""How strong and how recent the caller's sign-in must be: RFC 9470 (OAuth 2.0 Step Up
Authentication Challenge). Both refusals are a 401 with ``insufficient_user_authentication``
and the ``acr_values`` (and ``max_age``) a new sign-in must meet (section 3).

An application signs in with a certificate or a federated credential, never a password:
there is no second factor to ask it for. A8 does not apply to it, and a sensitive command
is refused to it (403) unless the tenant's policy names one of its role groups in
``app_sensitive_role_groups`` (docs/decisions/0039)."""

from __future__ import annotations

from bastion.authority.sign_in_sessions import ACR_TWO_FACTORS, SECOND_FACTOR_METHODS
from bastion.core.text import human_duration
from bastion.plane import access
from bastion.plane.call import Call
from bastion.plane.command_errors import Forbidden, StepUpRequired
from bastion.plane.steps.permission import keep_to_scope


def require_two_factors(call: Call) -> None:
    """A8 (docs/decisions/0018): a role holder's token must come from a sign-in with a
    second factor. Roles are read at each command, so a role granted after a password-only
    sign-in finds such a token here: RFC 9470 asks for the second factor. This runs before
    authorization, so such a caller learns what to do rather than what is denied."""
    caller = call.caller
    if caller.is_application:
        return
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
    if caller.is_application:
        _allow_application(call)
        return
    if caller.acr != ACR_TWO_FACTORS or call.now - caller.auth_time > window:
        raise StepUpRequired(
            f"{spec.name} needs a second factor from the last {human_duration(window)}.",
            max_age=window,
            acr_values=ACR_TWO_FACTORS,
        )


def _allow_application(call: Call) -> None:
    """A sensitive command runs for an application only when one of its role groups that
    grants the command is named in the tenant's ``app_sensitive_role_groups``; it then acts
    within the scopes of those role groups alone."""
    spec, caller = call.spec, call.caller
    allowed = set(caller.tenant.policy.app_sensitive_role_groups)
    chosen = tuple(grant for grant in caller.grants if grant.role_group in allowed)
    scope = access.authorize(chosen, spec, set(call.raw), caller.tenant.id, call.roles)
    if scope is None:
        raise Forbidden(
            f"{spec.name} is sensitive: an application may run it only through a role group "
            "the tenant's policy names for applications' sensitive commands.",
            hint="An operator can name the role group with bastion tenant set "
            "--app-sensitive-role-groups.",
            command=spec.name,
            reason="application_sensitive_command",
        )
    call.allowed = scope
    keep_to_scope(call)
