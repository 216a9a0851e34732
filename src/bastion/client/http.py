"""One configured HTTP client for every request of a connection, sign-in included (S4).

Options come from arguments, then the profile, then defaults; the usual ``HTTPS_PROXY``,
``HTTP_PROXY``, ``NO_PROXY`` and ``SSL_CERT_FILE`` variables apply unless a proxy or CA
bundle is given explicitly. Requests are retried on connection failures, ``429`` and
``503``, with exponential backoff and jitter, honouring ``Retry-After`` (seconds or an HTTP
date) up to :data:`MAX_RETRY_AFTER`. A certificate that fails verification is not retried:
it would fail the same way. A request whose body may already have reached the
server (a read timeout, a dropped connection) is retried only when it is idempotent.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from bastion.client.errors import ConfigError, NetworkError, ProxyError, ServerError

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: a ``Retry-After`` longer than this is not waited for: the error is raised at once
MAX_RETRY_AFTER = 120.0
RETRY_STATUSES = frozenset({429, 503})
USER_AGENT = "bastion-client/0.1.0"


@dataclass(frozen=True)
class Options:
    """Session options: settable per profile and per call of ``connect``."""

    proxy: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    ca_bundle: str | None = None
    retries: int = DEFAULT_RETRIES


def redact(url: str) -> str:
    """``url`` without the password it may carry (proxy URLs do)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


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


class Http:
    """The connection's HTTP client (``httpx``), created on first use."""

    def __init__(
        self,
        options: Options,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.options = options
        self._sleep = sleep
        self._rand = rand
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> httpx.Client:
        import ssl

        import httpx

        verify: ssl.SSLContext | bool = True
        if self.options.ca_bundle:
            try:
                verify = ssl.create_default_context(cafile=self.options.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"the CA bundle {self.options.ca_bundle} cannot be used: {exc}.",
                    hint="Give the path of a PEM file of CA certificates.",
                ) from exc
        return httpx.Client(
            proxy=self.options.proxy or None,
            verify=verify,
            timeout=self.options.timeout,
            trust_env=True,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def request(
        self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send one request, retrying what may be retried; raise NetworkError/ProxyError
        when the server cannot be reached, and ServerError when it stays busy."""
        import httpx

        attempt = 0
        while True:
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.ProxyError as exc:
                raise self._proxy_error(str(exc)) from exc
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # an untrusted certificate stays untrusted: it is not worth a retry
                if attempt >= self.options.retries or untrusted_certificate(exc):
                    raise self._network_error(url, exc) from exc
                self._sleep(backoff(attempt, self._rand))
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if not idempotent or attempt >= self.options.retries:
                    raise self._network_error(url, exc) from exc
                self._sleep(backoff(attempt, self._rand))
            else:
                if response.status_code == 407:
                    raise self._proxy_error("407 Proxy Authentication Required")
                if response.status_code not in RETRY_STATUSES:
                    return response
                wait = retry_after(response.headers.get("retry-after"), time.time())
                if attempt >= self.options.retries or (wait or 0) > MAX_RETRY_AFTER:
                    return response
                self._sleep(wait if wait is not None else backoff(attempt, self._rand))
            attempt += 1

    def _network_error(self, url: str, exc: Exception) -> NetworkError:
        host = urlsplit(url).netloc
        via = f" through the proxy {redact(self.options.proxy)}" if self.options.proxy else ""
        what = type(exc).__name__
        tries = self.options.retries + 1
        tried = "once" if tries == 1 else f"{tries} times"
        hint = (
            f"Check the address and your network (tried {tried}; the timeout is "
            f"{self.options.timeout:g} s)."
        )
        cli_hint = None
        if untrusted_certificate(exc):
            hint = (
                "The server's certificate is not trusted: give the PEM file of its CA "
                "certificate as connect(ca_bundle=...) or in the profile (add_profile)."
            )
            cli_hint = (
                "The server's certificate is not trusted: give the PEM file of its CA "
                "certificate with --ca-bundle FILE (bastion connect --ca-bundle FILE keeps it "
                "in the profile)."
            )
        return NetworkError(
            f"cannot reach {host}{via}: {what}: {exc or 'no answer'}.",
            hint=hint,
            cli_hint=cli_hint,
        )

    def _proxy_error(self, what: str) -> ProxyError:
        proxy = redact(self.options.proxy) if self.options.proxy else "the proxy"
        if "407" in what:
            return ProxyError(
                f"{proxy} refused the request: it needs valid proxy credentials (407).",
                hint="Put the proxy user and password in the proxy URL "
                "(http://user:password@proxy:port) given as connect(proxy=...), in the profile "
                "or in HTTPS_PROXY.",
                cli_hint="Put the proxy user and password in the proxy URL "
                "(--proxy http://user:password@proxy:port, kept in the profile by bastion "
                "connect), or in HTTPS_PROXY.",
            )
        return ProxyError(f"{proxy} failed: {what}.", hint="Check the proxy setting.")


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of a response, or None when it has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def require_json(response: httpx.Response, what: str) -> dict[str, Any]:
    body = json_body(response)
    if body is None:
        raise ServerError(
            f"{what} answered {response.status_code} without a JSON object.",
            hint="Check that the URL points at a Bastion server.",
            status=response.status_code,
        )
    return body
