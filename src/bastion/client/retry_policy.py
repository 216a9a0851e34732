"""When a request may be sent again, and how long to wait first (no HTTP library here).

Three kinds of failure, three rules:

- the request never left (the connection could not be made): any request may be sent
  again, except when the server's certificate failed verification, which would fail the
  same way;
- the server answered ``429`` or ``503``: it did not do the work; the request is sent
  again after ``Retry-After`` (RFC 9110 section 10.2.3, seconds or an HTTP date), or after
  an exponential backoff with jitter when the header is absent, unless the server asks for
  more than :data:`MAX_RETRY_AFTER`;
- the answer was lost (a read timeout, a dropped connection): the server may have done the
  work, so only a replayable request is sent again: one whose method is idempotent
  (RFC 9110 section 9.2.2), one that carries an ``Idempotency-Key``, or one its caller
  marked as safe to repeat (:data:`REPLAYABLE`).
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable, Mapping

DEFAULT_RETRIES = 3
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: a ``Retry-After`` longer than this is not waited for: the answer is returned at once
MAX_RETRY_AFTER = 120.0
RETRY_STATUSES = frozenset({429, 503})
#: RFC 9110 section 9.2.2
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: the request extension by which a caller says whether a lost answer may be asked again
REPLAYABLE = "bastion.replayable"


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random."""
    step = min(BACKOFF_CAP, BACKOFF_BASE * (2.0**attempt))
    return step / 2 + rand() * step / 2


def untrusted_certificate(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed certificate verification."""
    import ssl

    seen: BaseException | None = exc
    for _ in range(8):  # a chain of causes is short; never follow a cycle forever
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def replayable(method: str, headers: Mapping[str, str], mark: object = None) -> bool:
    """Whether a request whose answer was lost may be sent again: the caller's ``mark``
    (:data:`REPLAYABLE`) when it gave one, else its method or its ``Idempotency-Key``."""
    if isinstance(mark, bool):
        return mark
    return method.upper() in IDEMPOTENT_METHODS or "idempotency-key" in headers


def wait_before_answer_retry(
    status: int, header: str | None, attempt: int, now: float, rand: Callable[[], float]
) -> float | None:
    """How long to wait before asking again after an answer with ``status``; None when the
    answer stands (not a ``429``/``503``, or a ``Retry-After`` beyond
    :data:`MAX_RETRY_AFTER`). Whether a retry is left is the caller's count."""
    if status not in RETRY_STATUSES:
        return None
    wait = retry_after(header, now)
    if wait is None:
        return backoff(attempt, rand)
    return wait if wait <= MAX_RETRY_AFTER else None
