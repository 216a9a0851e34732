"""Every error the client raises, on one tree.

Each error carries what a script, the CLI and the shell need: ``exit_code`` (the CLI's exit
status), ``hint`` (what to do next, for people, in the library's terms: ``connect()`` and
its parameters), ``cli_hint`` (the same in the command line's terms, its commands and
flags, when they differ) and, when the server answered with problem
details (RFC 9457) or an OAuth error (RFC 6749 section 5.2), that answer in ``problem``.

::

    ClientError                    exit 1
    ├── UsageError                 exit 2   bad arguments, unknown command or parameter, 400
    │   └── ConfigError            exit 2   a profile or setting that cannot be used
    ├── NotFoundError              exit 3   404: no such object, service or command
    ├── SignInRequired             exit 4   no usable sign-in, and no one to ask
    │   ├── SignInFailed           exit 4   a wrong password or code, a declined approval
    │   └── StepUpRequired         exit 4   RFC 9470: a recent second factor is needed
    ├── PermissionDenied           exit 1   403: the caller's roles do not allow it
    ├── ConflictError              exit 1   409
    ├── ServerError                exit 1   5xx, or an answer the client cannot read
    ├── NetworkError               exit 1   the server could not be reached (after retries)
    │   └── ProxyError             exit 1   the proxy refused (407: credentials) or failed
    ├── IssuerMismatch             exit 1   an answer from another issuer than expected (T9)
    └── ListingIncomplete          exit 5   a listing stopped part-way; resume from ``cursor``
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ClientError",
    "ConfigError",
    "ConflictError",
    "IssuerMismatch",
    "ListingIncomplete",
    "NetworkError",
    "NotFoundError",
    "PermissionDenied",
    "ProxyError",
    "ServerError",
    "SignInFailed",
    "SignInRequired",
    "StepUpRequired",
    "UsageError",
    "error_from_problem",
]


class ClientError(Exception):
    """Base of every error the client raises."""

    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        detail: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
        cli_hint: str | None = None,
    ) -> None:
        super().__init__(detail)
        #: what went wrong, in one sentence
        self.detail = detail
        #: what to do next
        self.hint = hint
        #: what to do next on the command line (``bastion`` and the shell), if not ``hint``
        self.cli_hint = cli_hint
        #: the HTTP status of the server's answer, if there was one
        self.status = status
        #: the server's problem details or OAuth error body, as received
        self.problem: dict[str, Any] = dict(problem or {})

    @property
    def type(self) -> str | None:
        """The problem ``type`` URI (or the OAuth ``error`` code) of the server's answer."""
        value = self.problem.get("type") or self.problem.get("error")
        return str(value) if value else None

    @property
    def parameter(self) -> str | None:
        """The parameter the server named as wrong, if any."""
        value = self.problem.get("parameter")
        return str(value) if value else None

    def __str__(self) -> str:
        return _joined(self.detail, self.hint)

    def for_cli(self) -> str:
        """The message with the hint for the command line."""
        return _joined(self.detail, self.cli_hint or self.hint)


def _joined(detail: str, hint: str | None) -> str:
    if hint and hint not in detail:
        return f"{detail} {hint}"
    return detail


class UsageError(ClientError):
    exit_code = 2


class ConfigError(UsageError):
    pass


class NotFoundError(ClientError):
    exit_code = 3


class SignInRequired(ClientError):
    exit_code = 4


class SignInFailed(SignInRequired):
    pass


class StepUpRequired(SignInRequired):
    """RFC 9470: the service wants a second factor younger than ``max_age`` seconds."""

    def __init__(
        self,
        detail: str,
        *,
        max_age: int | None = None,
        acr_values: str | None = None,
        hint: str | None = None,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
        cli_hint: str | None = None,
    ) -> None:
        super().__init__(detail, hint=hint, status=status, problem=problem, cli_hint=cli_hint)
        self.max_age = max_age
        self.acr_values = acr_values


class PermissionDenied(ClientError):
    pass


class ConflictError(ClientError):
    pass


class ServerError(ClientError):
    pass


class NetworkError(ClientError):
    pass


class ProxyError(NetworkError):
    pass


class IssuerMismatch(ClientError):
    """An answer claims another issuer than the one the client asked (RFC 9207, T9)."""

    def __init__(self, what: str, *, expected: str, received: str | None) -> None:
        super().__init__(
            f"{what} comes from issuer '{received or '(none)'}', not from '{expected}'; "
            "it was refused.",
            hint="Check the URL and tenant you connect to. If they are right, the answer was "
            "tampered with or came from another tenant: do not continue.",
        )
        self.expected = expected
        self.received = received


class ListingIncomplete(ClientError):
    """A listing failed part-way. ``count`` objects were delivered; ``cursor`` resumes right
    after them (pass it as ``cursor=`` to the same command with the same parameters)."""

    exit_code = 5

    def __init__(self, *, count: int, cursor: str, cause: ClientError) -> None:
        super().__init__(
            f"the listing stopped after {count} objects: {cause.detail}",
            hint="Resume from the cursor this error carries; no object is missed or repeated.",
            status=cause.status,
            problem=cause.problem,
        )
        self.count = count
        self.cursor = cursor
        self.cause = cause


_BY_STATUS: dict[int, type[ClientError]] = {
    400: UsageError,
    401: SignInRequired,
    403: PermissionDenied,
    404: NotFoundError,
    409: ConflictError,
    422: UsageError,
}


def error_from_problem(status: int, body: dict[str, Any] | None, fallback: str) -> ClientError:
    """The error for a service's problem-details answer (or any error answer)."""
    body = body or {}
    detail = str(body.get("detail") or body.get("error_description") or body.get("title") or "")
    detail = detail or fallback
    hint = body.get("hint")
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 or status < 400 else ClientError
    return cls(detail, hint=str(hint) if hint else None, status=status, problem=body)
