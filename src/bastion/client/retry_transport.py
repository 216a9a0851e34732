"""Retries as an httpx transport: one wrapper around the transport that sends.

Every request of a connection, sign-in included, goes through :class:`RetryTransport`; the
rules for what is sent again and when are in :mod:`bastion.client.retry_policy`. As a
transport it sees each attempt and nothing above it (auth, redirects, cookies), and it can
be tested with ``httpx.MockTransport`` and an injected ``sleep``: no test waits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import httpx

from bastion.client.retry_policy import (
    REPLAYABLE,
    backoff,
    replayable,
    untrusted_certificate,
    wait_before_answer_retry,
)

#: the request never reached the server: it may be sent again whatever it is
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: the answer was lost: the server may have acted, so only a replayable request is resent
ANSWER_LOST = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class RetryTransport(httpx.BaseTransport):
    """Send through ``inner``, again after a connection failure, a ``429`` or a ``503``,
    at most ``retries`` more times."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        retries: int,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.retries = retries
        self._sleep = sleep
        self._rand = rand
        self._clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.inner.handle_request(request)
            except httpx.ProxyError:
                raise  # the proxy's refusal stays a refusal
            except ANSWER_LOST as exc:
                if attempt >= self.retries or not self._may_resend(request, exc):
                    raise
                wait = backoff(attempt, self._rand)
            else:
                header = response.headers.get("retry-after")
                found = wait_before_answer_retry(
                    response.status_code, header, attempt, self._clock(), self._rand
                )
                if found is None or attempt >= self.retries:
                    return response
                response.close()  # frees the connection for the next attempt
                wait = found
            self._sleep(wait)
            attempt += 1

    @staticmethod
    def _may_resend(request: httpx.Request, exc: Exception) -> bool:
        if isinstance(exc, NOT_SENT):
            # an untrusted certificate stays untrusted: it is not worth a retry
            return not untrusted_certificate(exc)
        mark = request.extensions.get(REPLAYABLE)
        return replayable(request.method, request.headers, mark)

    def close(self) -> None:
        self.inner.close()
