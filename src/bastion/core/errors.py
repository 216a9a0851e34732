"""One error tree for the whole of Bastion.

Every error a user can cause is a :class:`BastionError`. Each carries what the three
surfaces need, so they never disagree:

- ``status``: the HTTP status of a problem-details (RFC 9457) or OAuth error response;
- ``oauth_error``: the RFC 6749 / RFC 8628 / RFC 8707 error code, where one applies;
- ``exit_code``: the CLI's exit code (0 ok, 1 error, 2 usage, 3 not found,
  4 sign-in needed, 5 listing incomplete);
- ``hint``: what to do next, shown to people.

::

    BastionError                       500  exit 1
    ├── UsageError                     400  exit 2   bad options or parameters
    │   └── ConfigError                      exit 2   a setting Bastion refuses to start with
    ├── NotFound                       404  exit 3
    ├── Conflict                       409  exit 1
    ├── OAuthError                     400  exit 4   any RFC 6749 error response
    │   ├── InvalidRequest               invalid_request
    │   ├── InvalidClient (401)          invalid_client
    │   ├── InvalidGrant                 invalid_grant
    │   ├── UnauthorizedClient           unauthorized_client
    │   ├── UnsupportedGrantType         unsupported_grant_type
    │   ├── UnsupportedResponseType      unsupported_response_type
    │   ├── InvalidScope                 invalid_scope
    │   ├── InvalidTarget                invalid_target        (RFC 8707)
    │   ├── AccessDenied                 access_denied
    │   ├── AuthorizationPending         authorization_pending (RFC 8628)
    │   ├── SlowDown                     slow_down             (RFC 8628)
    │   └── ExpiredToken                 expired_token         (RFC 8628)
    ├── SignInFailed                   401  exit 4   a wrong password, code, or a locked factor
    ├── InvalidToken                   401  exit 4   a bearer token a service refuses (RFC 6750)
    └── StoreUnavailable               503  exit 1
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://bastion.dev/problems/"


class BastionError(Exception):
    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    oauth_error: ClassVar[str | None] = None
    problem: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self, detail: str, *, hint: str | None = None, keep_changes: bool = False, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint
        #: commit the transaction before answering with this error: a security response
        #: (a revoked token family, an audit record of the failure) must outlive the refusal
        self.keep_changes = keep_changes
        self.extra = extra

    def __str__(self) -> str:
        return f"{self.detail} {self.hint}" if self.hint else self.detail

    def problem_details(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body for this error."""
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.problem,
            "title": self.title,
            "status": self.status,
            "detail": str(self),
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body

    def oauth_body(self) -> dict[str, Any]:
        """The RFC 6749 section 5.2 body for this error."""
        body: dict[str, Any] = {
            "error": self.oauth_error or "server_error",
            "error_description": str(self),
        }
        body.update(self.extra)
        return body


class UsageError(BastionError):
    status = 400
    exit_code = 2
    problem = "invalid-parameters"
    title = "Invalid parameters"


class ConfigError(UsageError):
    problem = "invalid-configuration"
    title = "Invalid configuration"


class NotFound(BastionError):
    status = 404
    exit_code = 3
    problem = "not-found"
    title = "Not found"


class Conflict(BastionError):
    status = 409
    problem = "conflict"
    title = "Conflict"


class OAuthError(BastionError):
    status = 400
    exit_code = 4
    oauth_error = "invalid_request"
    problem = "oauth-error"
    title = "OAuth error"


class InvalidRequest(OAuthError):
    oauth_error = "invalid_request"


class InvalidClient(OAuthError):
    status = 401
    oauth_error = "invalid_client"


class InvalidGrant(OAuthError):
    oauth_error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    oauth_error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    oauth_error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    oauth_error = "unsupported_response_type"


class InvalidScope(OAuthError):
    oauth_error = "invalid_scope"


class InvalidTarget(OAuthError):
    oauth_error = "invalid_target"


class AccessDenied(OAuthError):
    status = 400
    oauth_error = "access_denied"


class AuthorizationPending(OAuthError):
    oauth_error = "authorization_pending"


class SlowDown(OAuthError):
    oauth_error = "slow_down"


class ExpiredToken(OAuthError):
    oauth_error = "expired_token"


class SignInFailed(BastionError):
    status = 401
    exit_code = 4
    problem = "sign-in-failed"
    title = "Sign-in failed"


class InvalidToken(BastionError):
    """A bearer token refused by a resource server (RFC 6750 section 3.1)."""

    status = 401
    exit_code = 4
    oauth_error = "invalid_token"
    problem = "invalid-token"
    title = "Invalid token"


class StoreUnavailable(BastionError):
    status = 503
    problem = "store-unavailable"
    title = "Storage unavailable"


class MethodNotAllowed(BastionError):
    status = 405
    problem = "method-not-allowed"
    title = "Method not allowed"


class PayloadTooLarge(BastionError):
    """A body over its route's limit, refused while it streams (before authentication)."""

    status = 413
    oauth_error = "invalid_request"
    problem = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(BastionError):
    status = 415
    oauth_error = "invalid_request"
    problem = "unsupported-media-type"
    title = "Unsupported media type"


class MisdirectedRequest(BastionError):
    """A request for a host name this server does not answer for (RFC 9110 section 15.5.20):
    names in tokens and discovery come from configuration, never from ``Host``."""

    status = 421
    oauth_error = "invalid_request"
    problem = "misdirected-request"
    title = "Misdirected request"
