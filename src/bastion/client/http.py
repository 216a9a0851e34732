"""One configured HTTP client for every request of a connection, sign-in included (S4).

Options come from arguments, then the profile, then defaults; the usual ``HTTPS_PROXY``,
``HTTP_PROXY``, ``NO_PROXY`` and ``SSL_CERT_FILE`` variables apply unless a proxy or CA
bundle is given explicitly. Every transport of the client (direct or through a proxy) is
wrapped in a :class:`~bastion.client.retry_transport.RetryTransport`, which retries
connection failures, ``429`` and ``503`` by the rules of :mod:`bastion.client.retry_policy`;
this module turns what still fails into the client's errors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from bastion.client.errors import ConfigError, NetworkError, ProxyError, ServerError
from bastion.client.retry_policy import (
    BACKOFF_CAP,
    DEFAULT_RETRIES,
    MAX_RETRY_AFTER,
    REPLAYABLE,
    RETRY_STATUSES,
    backoff,
    retry_after,
    untrusted_certificate,
)

if TYPE_CHECKING:
    import ssl

    import httpx

    from bastion.client.retry_transport import RetryTransport

__all__ = [
    "BACKOFF_CAP",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_RETRY_AFTER",
    "RETRY_STATUSES",
    "Http",
    "Options",
    "backoff",
    "json_body",
    "redact",
    "require_json",
    "retry_after",
    "untrusted_certificate",
]

DEFAULT_TIMEOUT = 30.0
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
        import httpx

        # httpx reads the proxy variables only for a client without an explicit transport,
        # so the routes it would take from them are built here, each one retrying
        from httpx._utils import get_environment_proxies

        verify = self._verify()
        routes: dict[str, str | None] = {}
        if not self.options.proxy:
            routes = get_environment_proxies()
        return httpx.Client(
            transport=self._retrying(verify, self.options.proxy or None),
            mounts={
                pattern: None if proxy is None else self._retrying(verify, proxy)
                for pattern, proxy in routes.items()
            },
            timeout=self.options.timeout,
            trust_env=True,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    def _verify(self) -> ssl.SSLContext | bool:
        import ssl

        if not self.options.ca_bundle:
            return True
        try:
            return ssl.create_default_context(cafile=self.options.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"the CA bundle {self.options.ca_bundle} cannot be used: {exc}.",
                hint="Give the path of a PEM file of CA certificates.",
            ) from exc

    def _retrying(self, verify: ssl.SSLContext | bool, proxy: str | None) -> RetryTransport:
        import httpx

        from bastion.client.retry_transport import RetryTransport

        sender = httpx.HTTPTransport(verify=verify, trust_env=True, proxy=proxy)
        return RetryTransport(
            sender, retries=self.options.retries, sleep=self._sleep, rand=self._rand
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def request(
        self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send one request (retried by the transport; a lost answer only when
        ``idempotent``); raise NetworkError/ProxyError when the server cannot be reached."""
        import httpx

        extensions = {**kwargs.pop("extensions", {}), REPLAYABLE: idempotent}
        try:
            response = self.client.request(method, url, extensions=extensions, **kwargs)
        except httpx.ProxyError as exc:
            raise self._proxy_error(str(exc)) from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise self._network_error(url, exc) from exc
        if response.status_code == 407:
            raise self._proxy_error("407 Proxy Authentication Required")
        return response

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
