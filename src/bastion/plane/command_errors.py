"""The command plane's errors, on the one error tree (``bastion.core.errors``)."""

from __future__ import annotations

from bastion.core.errors import BastionError


class Forbidden(BastionError):
    status = 403
    exit_code = 1
    problem = "forbidden"
    title = "Not allowed"


class StepUpRequired(BastionError):
    """RFC 9470: the sign-in is too old or too weak for this command."""

    status = 401
    exit_code = 4
    oauth_error = "insufficient_user_authentication"
    problem = "step-up-required"
    title = "A recent second factor is needed"

    def __init__(self, detail: str, *, acr_values: str, max_age: int | None = None) -> None:
        super().__init__(detail, hint="Confirm your second factor, then retry.")
        self.max_age = max_age
        self.acr_values = acr_values


class CommandNotFound(BastionError):
    status = 404
    exit_code = 3
    problem = "unknown-command"
    title = "Unknown command"
