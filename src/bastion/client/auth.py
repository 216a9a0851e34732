"""Tokens for a connection: from memory, from the shared cache, by renewal, or by sign-in.

For each service audience the connection needs an access token. In order:

1. the token in this process's memory, while it is fresh (renewal starts ahead of expiry);
2. under the cache lock, the token in the cache file, which another process may have
   renewed meanwhile;
3. still under the lock, a renewal with the cached refresh token (``resource`` names the
   audience), the rotated refresh token written back before the lock is released, so no
   two processes ever present the same refresh token;
4. a sign-in, if a person can be asked; otherwise ``SignInRequired``.

A service's ``401 invalid_token`` asks for one renewal past the refused token; an RFC 9470
challenge asks for a step-up (:meth:`Authenticator.step_up`).

An application (:mod:`bastion.client.signin.application`) has no refresh token and nobody
to ask: steps 3 and 4 are one token request with a new client assertion, made under the
cache lock like a renewal; a cache that holds a person's sign-in is not an application's,
and the reverse.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from bastion.client import oauth, signin
from bastion.client.cache import Account, CachedToken, CacheState, TokenCache
from bastion.client.discovery import Discovery
from bastion.client.errors import (
    ClientError,
    IssuerMismatch,
    SignInRequired,
    StepUpRequired,
)
from bastion.client.http import Http
from bastion.client.oauth import Challenge, TokenSet
from bastion.client.prompt import Prompt
from bastion.client.signin import FlowContext, Method, SignInRequest
from bastion.client.signin.application import AppCredential

log = logging.getLogger("bastion.client")

NOT_INTERACTIVE = (
    "Call connect() where a person can answer (a terminal or a notebook; interactive=True "
    "shows a device code anywhere): the sign-in is kept for later runs. Or pass an access "
    "token as connect(token=...)."
)


def connect_command(profile: str | None) -> str:
    """The command line that signs in to ``profile``."""
    return "bastion connect" + (f" --profile {profile}" if profile else "")


def not_interactive_cli(profile: str | None) -> str:
    """What to run, for a command of the ``bastion`` command line that found nobody to ask."""
    return (
        f"Sign in from a terminal with '{connect_command(profile)}'; later runs use that "
        "sign-in until it ends."
    )


class Authenticator:
    def __init__(
        self,
        *,
        issuer: str,
        tenant: str,
        http: Http,
        discovery: Callable[[], Discovery],
        cache: TokenCache | None,
        method: Method,
        interactive: bool,
        can_type: bool,
        prompt: Prompt,
        token: str | None = None,
        profile: str | None = None,
        application: AppCredential | None = None,
    ) -> None:
        self.issuer = issuer
        self.profile = profile
        self.tenant = tenant
        self.method = method
        self.interactive = interactive
        self.can_type = can_type
        self.prompt = prompt
        self.cache = cache
        self._http = http
        self._discovery = discovery
        self._given = token
        self.application = application
        self._memory: dict[str, CachedToken] = {}
        self._lock = threading.RLock()
        self.sleep: Callable[[float], None] = time.sleep
        if token is not None:
            found = oauth.claims(token).get("iss")
            if found is not None and found != issuer:
                raise IssuerMismatch("the access token given", expected=issuer, received=found)

    # -- state ---------------------------------------------------------------------------

    def state(self) -> CacheState:
        """The cached sign-in of this issuer (read without the lock; no network)."""
        if self.cache is None:
            return CacheState(issuer=self.issuer)
        state = self.cache.load().for_issuer(self.issuer)
        if state.client_id != self._client_id:  # a person's sign-in is not an app's
            return CacheState(issuer=self.issuer)
        return state

    @property
    def _client_id(self) -> str | None:
        return self.application.app_id if self.application is not None else None

    def signed_in(self) -> bool:
        if self._given is not None:
            return True
        state = self.state()
        now = time.time()
        return bool(state.refresh_token) or any(t.fresh(now) for t in state.access.values())

    # -- access tokens -------------------------------------------------------------------

    def access_token(self, audience: str, *, reject: str | None = None) -> str:
        """A fresh access token for ``audience``; never ``reject`` (a token a service has
        just refused)."""
        with self._lock:
            if self._given is not None:
                return self._given_for(audience, reject)
            if self.application is not None:
                return self._app_token(audience, reject)
            now = time.time()
            cached = self._memory.get(audience)
            if cached is not None and cached.token != reject and cached.fresh(now):
                return cached.token
            reason: ClientError | None = None
            assert self.cache is not None
            with self.cache.transaction() as state:
                _own(state, self.issuer)  # an application's tokens are not a person's
                cached = state.access.get(audience)
                if cached is not None and cached.token != reject and cached.fresh(time.time()):
                    self._memory[audience] = cached
                    return cached.token
                if state.refresh_token:
                    renewed = self._renew(state, audience)
                    if isinstance(renewed, str):
                        return renewed
                    reason = renewed
                username = state.account.username if state.account else None
            return self._sign_in(SignInRequest(resource=audience, username=username), reason)

    def step_up(
        self, audience: str, rejected: str, challenge: Challenge, *, command: str | None = None
    ) -> str:
        """A token for ``audience`` from a sign-in that meets the service's RFC 9470
        challenge: one another process already made, else a new one (second factor only)."""
        with self._lock:
            detail = challenge.description or "this command needs a recent second factor."
            if self._given is not None:
                raise StepUpRequired(
                    detail, max_age=challenge.max_age, acr_values=challenge.acr_values
                )
            if self.application is not None:
                raise StepUpRequired(
                    detail,
                    max_age=challenge.max_age,
                    acr_values=challenge.acr_values,
                    hint="An application has no second factor: run this command as a person, "
                    "or give the application a role whose commands do not ask for one.",
                )
            before = float(oauth.claims(rejected).get("auth_time") or 0)
            assert self.cache is not None
            with self.cache.transaction() as state:
                _own(state, self.issuer)
                account = state.account
                # Another process (or connection) may have stepped up since this token was
                # issued: the sign-in session is then recent, and a renewal carries it.
                if state.refresh_token and account is not None and account.auth_time > before:
                    renewed = self._renew(state, audience)
                    if isinstance(renewed, str):
                        return renewed
                auth_session = state.auth_session
                username = state.account.username if state.account else None
            if not self.interactive:
                raise StepUpRequired(
                    detail,
                    max_age=challenge.max_age,
                    acr_values=challenge.acr_values,
                    hint="Run it again where you can confirm your second factor (a terminal "
                    "or a notebook).",
                    cli_hint="Run it again in a terminal, where you can confirm your second "
                    f"factor, or right after '{connect_command(self.profile)} --force'.",
                )
            request = SignInRequest(
                resource=audience,
                max_age=challenge.max_age if challenge.max_age is not None else 0,
                acr_values=challenge.acr_values,
                username=username,
                auth_session=auth_session,
                command=command,
            )
            return self._sign_in(request, None)

    def sign_in(self, audience: str, *, force: bool = False) -> None:
        """Make sure there is a sign-in: nothing to do when the cache has one (no network),
        unless ``force``."""
        with self._lock:
            if self._given is not None or (not force and self.signed_in()):
                return
            if self.application is not None:
                self._app_token(audience, None, force=force)
                return
            account = self.state().account
            username = account.username if account else None
            self._sign_in(SignInRequest(resource=audience, username=username), None)

    # -- sign-in and storage --------------------------------------------------------------

    def _sign_in(self, request: SignInRequest, reason: ClientError | None) -> str:
        if not self.interactive:
            detail = (
                f"the sign-in to {self.issuer} has ended: {reason.detail}"
                if reason is not None
                else f"there is no sign-in to {self.issuer} in this profile."
            )
            raise SignInRequired(
                detail, hint=NOT_INTERACTIVE, cli_hint=not_interactive_cli(self.profile)
            )
        if reason is not None:
            self.prompt.show(f"Your sign-in to {self.issuer} has ended ({reason.detail}).")
        method = signin.effective_method(self.method, can_type=self.can_type)
        if request.known_client is None:
            request = replace(request, known_client=self.state().known_client)
        ctx = FlowContext(
            http=self._http,
            discovery=self._discovery(),
            prompt=self.prompt,
            can_type=self.can_type,
            sleep=self.sleep,
        )
        tokens = signin.run(method, ctx, request)
        assert self.cache is not None
        with self.cache.transaction() as state:
            previous = state.refresh_token if state.issuer == self.issuer else None
            _own(state, self.issuer, clear=True)  # tokens of the old sign-in are not reused
            self._memory.clear()
            state.method = method
            state.known_client = tokens.known_client or state.known_client
            token = self._store(state, request.resource, tokens)
        if previous and previous != tokens.refresh_token:
            self._revoke_quietly(previous, "refresh_token")
        return token

    def _renew(self, state: CacheState, audience: str) -> str | ClientError:
        """Renew with the cached refresh token (the caller holds the cache lock): the new
        access token, or why the sign-in is over (the cache then forgets it)."""
        assert state.refresh_token is not None
        self._memory.pop(audience, None)
        try:
            tokens = oauth.refresh(
                self._http,
                self._discovery().token_endpoint,
                state.refresh_token,
                issuer=self.issuer,
                resource=audience,
            )
        except SignInRequired as exc:
            _own(state, self.issuer, clear=True)
            self._memory.clear()
            return exc
        return self._store(state, audience, tokens)

    def _store(self, state: CacheState, audience: str | None, tokens: TokenSet) -> str:
        cached = CachedToken(tokens.access_token, tokens.expires_at, tokens.lifetime)
        key = audience or tokens.audience or self.issuer
        state.access[key] = cached
        self._memory[key] = cached
        if tokens.refresh_token:
            state.refresh_token = tokens.refresh_token
        if tokens.auth_session:
            state.auth_session = tokens.auth_session
        if tokens.session_expires_at:
            state.session_expires_at = tokens.session_expires_at
        account = _account(tokens, self.issuer, self.tenant, self._client_id)
        if account is not None:
            state.account = account
        return tokens.access_token

    def _app_token(self, audience: str, reject: str | None, *, force: bool = False) -> str:
        """The application's token for ``audience``: from memory, from the cache, else a new
        one asked with a new assertion (under the cache lock, so that processes sharing the
        cache ask once)."""
        from bastion.client.signin import application

        assert self.application is not None and self.cache is not None
        cached = self._memory.get(audience)
        if not force and _usable(cached, reject):
            assert cached is not None
            return cached.token
        previous: str | None = None
        with self.cache.transaction() as state:
            if state.issuer == self.issuer and state.client_id != self._client_id:
                previous = state.refresh_token  # a person's sign-in this profile had
            _own(state, self.issuer, client_id=self._client_id)
            cached = state.access.get(audience)
            if not force and cached is not None and _usable(cached, reject):
                self._memory[audience] = cached
                return cached.token
            self._memory.pop(audience, None)
            tokens = application.request_token(
                self._http,
                self._discovery().token_endpoint,
                self.application,
                issuer=self.issuer,
                audience=audience,
            )
            state.method = self.application.method
            token = self._store(state, audience, tokens)
            state.refresh_token = None  # never one for an application
        if previous:
            self._revoke_quietly(previous, "refresh_token")
        return token

    def _given_for(self, audience: str, reject: str | None) -> str:
        assert self._given is not None
        if reject == self._given:
            raise SignInRequired(
                "the access token given to connect was refused (expired or revoked).",
                hint="Give a new token, or connect with another sign-in method.",
            )
        aud = oauth.claims(self._given).get("aud")
        if aud is not None and audience not in (aud if isinstance(aud, list) else [aud]):
            raise SignInRequired(
                f"the access token given to connect is for {aud}, not for {audience}.",
                hint="Give a token for that service, or connect with a sign-in method.",
            )
        return self._given

    # -- sign-out ----------------------------------------------------------------------

    def sign_out(self) -> None:
        """Revoke the refresh token (and the cached access tokens) at the authority, then
        wipe the cache and its key; the wipe happens even when revocation fails."""
        with self._lock:
            self._memory.clear()
            if self.cache is None:
                return
            state = self.state()
            failure: ClientError | None = None
            try:
                endpoint = self._discovery().revocation_endpoint if state.refresh_token else None
                if endpoint and state.refresh_token:
                    oauth.revoke(self._http, endpoint, state.refresh_token, "refresh_token")
                    for cached in state.access.values():
                        if cached.expires_at > time.time():
                            oauth.revoke(self._http, endpoint, cached.token, "access_token")
            except ClientError as exc:
                failure = exc
            finally:
                self.cache.wipe()
            if failure is not None:
                raise failure

    def _revoke_quietly(self, token: str, hint: str) -> None:
        with contextlib.suppress(ClientError):
            endpoint = self._discovery().revocation_endpoint
            if endpoint:
                oauth.revoke(self._http, endpoint, token, hint)


def _usable(cached: CachedToken | None, reject: str | None) -> bool:
    return cached is not None and cached.token != reject and cached.fresh(time.time())


def _own(
    state: CacheState, issuer: str, *, clear: bool = False, client_id: str | None = None
) -> None:
    """Make ``state`` this issuer's, and a person's (``client_id`` None) or that
    application's: tokens of any other issuer or signer are dropped unused."""
    if clear or state.issuer != issuer or state.client_id != client_id:
        same = state.issuer == issuer and state.client_id == client_id
        account = state.account if same else None
        if state.issuer != issuer:
            state.known_client = None  # another authority's mark means nothing here
        state.issuer = issuer
        state.refresh_token = None
        state.auth_session = None
        state.access = {}
        state.session_expires_at = None
        state.account = account  # kept as a user name hint for the next sign-in
        state.client_id = client_id


def _account(
    tokens: TokenSet, issuer: str, tenant: str, client_id: str | None = None
) -> Account | None:
    found = tokens.claims
    if not found.get("sub"):
        return None
    if client_id is not None:
        name = found.get("app_displayname")
        return Account(
            sub=str(found["sub"]),
            username=f"{name} (application {client_id})" if name else f"application {client_id}",
            tenant=tenant,
            issuer=issuer,
            auth_time=0.0,
            acr="",
        )
    return Account(
        sub=str(found["sub"]),
        username=str(found.get("preferred_username") or found["sub"]),
        tenant=tenant,
        issuer=issuer,
        auth_time=float(found.get("auth_time") or 0),
        acr=str(found.get("acr") or ""),
        amr=[str(a) for a in found.get("amr") or []],
    )
