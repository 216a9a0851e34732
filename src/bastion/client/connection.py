"""``connect()`` and the :class:`Connection`: one sign-in, every service of a tenant (S2, S3).

A command is ``POST {service}/commands/{Verb-Noun}`` with a JSON object of parameters and a
bearer token for that service's audience. The token, its renewal and the step-up a service
may ask for (RFC 9470) are the auth flow's (:mod:`bastion.client.bearer_auth`), retries the
transport's (:mod:`bastion.client.retry_transport`); the connection sends an
``Idempotency-Key`` with every write so that a retry never applies it twice, and turns
problem details (RFC 9457) into the client's errors.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from typing import TYPE_CHECKING, Any

from bastion.client import catalog as catalogs
from bastion.client import discovery as discoveries
from bastion.client import files
from bastion.client.auth import Authenticator
from bastion.client.cache import TokenCache
from bastion.client.documents import DocumentCache
from bastion.client.errors import (
    ClientError,
    NotFoundError,
    error_from_problem,
)
from bastion.client.http import Http, json_body, require_json
from bastion.client.paging import Listing, Page, read_page
from bastion.client.prompt import Prompt, TerminalPrompt, presence
from bastion.client.report import Status
from bastion.client.services import Service
from bastion.client.settings import Settings, resolve

if TYPE_CHECKING:
    import httpx


class Connection:
    """A signed-in connection to every service of one tenant."""

    def __init__(
        self, settings: Settings, *, prompt: Prompt | None, interactive: bool | None
    ) -> None:
        self.settings = settings
        self.url = settings.url
        self.tenant = settings.tenant
        self.issuer = discoveries.issuer_of(settings.url, settings.tenant)
        self.profile = settings.profile
        self._http = Http(settings.options)
        self._documents = DocumentCache(settings.config_dir / "cache")
        self._discovery: discoveries.Discovery | None = None
        self._catalogs: dict[str, catalogs.Catalog] = {}
        self._lock = threading.RLock()
        self.cache = (
            TokenCache(settings.config_dir, settings.slot) if settings.token is None else None
        )
        present = presence(interactive, prompt_given=prompt is not None)
        self.auth = Authenticator(
            issuer=self.issuer,
            tenant=self.tenant,
            http=self._http,
            discovery=self.discovery,
            cache=self.cache,
            method=settings.method,
            interactive=present != "nobody",
            can_type=present == "typing",
            prompt=prompt or TerminalPrompt(),
            token=settings.token,
            profile=settings.profile,
            application=settings.application,
        )

    # -- the tenant ------------------------------------------------------------------------

    def discovery(self, *, refresh: bool = False) -> discoveries.Discovery:
        with self._lock:
            if self._discovery is None or refresh:
                self._discovery = discoveries.load(
                    self._http, self._documents, self.issuer, refresh=refresh
                )
            return self._discovery

    @property
    def services(self) -> list[str]:
        """The tenant's services, as discovery's ``bastion_services`` lists them."""
        return sorted(self.discovery().services)

    def service(self, name: str) -> Service:
        return Service(self, name, self._service_url(name))

    def _service_url(self, name: str) -> str:
        url = self.discovery().services.get(name)
        if url is None:
            url = self.discovery(refresh=True).services.get(name)
        if url is None:
            raise NotFoundError(
                f"{self.issuer} has no service '{name}'.",
                hint=f"Its services: {', '.join(self.services) or 'none'}.",
            )
        return url

    def catalog(self, service: str, *, refresh: bool = False) -> catalogs.Catalog:
        """The service's catalog, from memory, from disk while fresh, else from the server."""
        with self._lock:
            found = self._catalogs.get(service)
            if found is None or refresh:
                found = catalogs.load(
                    self._http,
                    self._documents,
                    service,
                    self._service_url(service),
                    refresh=refresh,
                )
                self._catalogs[service] = found
            return found

    def __getattr__(self, name: str) -> Service:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.discovery().services:
            return self.service(name)
        raise AttributeError(
            f"{self.issuer} has no service '{name}'; its services: {', '.join(self.services)}."
        )

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        with contextlib.suppress(ClientError):  # dir() must not fail for want of a network
            names.update(self.discovery().services)
        return sorted(names)

    def __repr__(self) -> str:
        who = f" profile={self.profile}" if self.profile else ""
        return f"<Connection {self.issuer}{who}>"

    # -- commands --------------------------------------------------------------------------

    def invoke(self, service: str, command: str, /, **params: Any) -> Any:
        """Run ``command`` of ``service`` with keyword parameters (JSON values).

        ``command`` is the catalog name (``Get-Mailbox``) or its Python name
        (``get_mailbox``). Returns the command's result; a listing command returns a
        :class:`~bastion.client.paging.Listing` that fetches later pages as it is consumed
        (``cursor=`` resumes one, ``page_size=`` sets its pages' size, ``count=True`` has
        the first page say how many objects there are: :attr:`Listing.total`)."""
        if "-" not in command:
            info = self.catalog(service).find(command)
            if info is None:
                raise NotFoundError(
                    f"the {service} service has no command '{command}'.",
                    hint=f"GET {self._service_url(service)}/commands lists them.",
                )
            command = info.name
        body = self._call(service, command, params)
        if "result" not in body and "items" in body:
            fixed = {k: v for k, v in params.items() if k not in ("cursor", "count")}

            def fetch(cursor: str) -> Page:
                return read_page(self._call(service, command, {**fixed, "cursor": cursor}))

            return Listing(read_page(body), fetch, command=f"{service} {command}")
        return body.get("result")

    def _call(self, service: str, command: str, params: dict[str, Any]) -> dict[str, Any]:
        from bastion.client.bearer_auth import BearerAuth  # loads httpx: on first use only

        base = self._service_url(service)
        auth = BearerAuth(self.auth, base, service=service, command=command)
        url = f"{base}/commands/{command}"
        response = self._http.request(
            "POST", url, json=params, headers=_headers(command), auth=auth
        )
        if response.status_code != 200:
            raise self._failure(service, command, base, response)
        return require_json(response, f"{service} {command}")

    def _failure(
        self, service: str, command: str, base: str, response: httpx.Response
    ) -> ClientError:
        """The error for a command's answer; an unknown command also drops the service's
        catalog, which no longer matches the server."""
        body = json_body(response)
        if response.status_code == 404 and "unknown-command" in str((body or {}).get("type")):
            self._catalogs.pop(service, None)
            self._documents.forget(f"{base}/commands")
        what = f"{service} {command} answered {response.status_code}"
        return error_from_problem(response.status_code, body, what)

    # -- the sign-in -----------------------------------------------------------------------

    def sign_in(self, *, force: bool = False) -> None:
        """Sign in now unless the cache already holds a sign-in (``force`` signs in anyway)."""
        services = self.discovery().services if force or not self.auth.signed_in() else {}
        audience = services.get("directory") or next(iter(services.values()), self.issuer)
        self.auth.sign_in(audience, force=force)

    def status(self) -> Status:
        state = self.auth.state()
        return Status(
            profile=self.profile,
            url=self.url,
            tenant=self.tenant,
            issuer=self.issuer,
            signed_in=self.auth.signed_in(),
            account=state.account,
            method="token" if self.settings.token else state.method,
            app_id=self.settings.application.app_id if self.settings.application else None,
            access_expires={k: v.expires_at for k, v in state.access.items()},
            session_expires_at=state.session_expires_at,
            key_storage=self.cache.key_storage if self.cache else "none (token given)",
            cache_path=str(self.cache.path) if self.cache else "",
        )

    def disconnect(self) -> None:
        """Sign out: revoke the refresh token at the authority, wipe the profile's token
        cache and its key. The local wipe happens even if the authority cannot be reached
        (that error is raised afterwards)."""
        try:
            self.auth.sign_out()
        finally:
            self.close()

    def close(self) -> None:
        """Close the HTTP connections (the sign-in stays in the cache)."""
        self._http.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _headers(command: str) -> dict[str, str]:
    """A write carries an ``Idempotency-Key``, the same on every retry of it, so that the
    service applies it once."""
    headers = {"Accept": "application/json"}
    if not catalogs.reads_only(command):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return headers


def connect(
    url: str | None = None,
    tenant: str | None = None,
    *,
    method: str | None = None,
    profile: str | None = None,
    token: str | None = None,
    interactive: bool | None = None,
    proxy: str | None = None,
    timeout: float | None = None,
    ca_bundle: str | None = None,
    retries: int | None = None,
    prompt: Prompt | None = None,
    config_dir: str | os.PathLike[str] | None = None,
    app_id: str | None = None,
    certificate: str | os.PathLike[str] | None = None,
    federated_token_file: str | os.PathLike[str] | None = None,
) -> Connection:
    """Connect to every service of a tenant, signing in if the profile's cache holds no
    sign-in. With ``app_id`` and a ``certificate`` or a ``federated_token_file``, sign in as
    that application: never interactive. See the package documentation for every
    argument."""
    settings = resolve(
        files.config_dir_of(config_dir),
        url=url,
        tenant=tenant,
        profile=profile,
        method=method,
        token=token,
        proxy=proxy,
        timeout=timeout,
        ca_bundle=ca_bundle,
        retries=retries,
        app_id=app_id,
        certificate=certificate,
        federated_token_file=federated_token_file,
    )
    conn = Connection(settings, prompt=prompt, interactive=interactive)
    try:
        conn.sign_in()
    except BaseException:
        conn.close()
        raise
    return conn


def status(
    profile: str | None = None,
    *,
    url: str | None = None,
    tenant: str | None = None,
    config_dir: str | os.PathLike[str] | None = None,
) -> Status:
    """The sign-in of a profile (default: the current one), from the cache alone: no
    network, no prompt."""
    settings = resolve(files.config_dir_of(config_dir), url=url, tenant=tenant, profile=profile)
    conn = Connection(settings, prompt=None, interactive=False)
    try:
        return conn.status()
    finally:
        conn.close()
