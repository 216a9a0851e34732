"""A service's HTTP surface: its catalog and one endpoint per command.

``GET  /api/{service}/commands``         the catalog, derived from the declarations
``POST /api/{service}/commands/{Name}``  run a command with a JSON object of parameters

Around every command, in one place and in this order (never inside command bodies):

=====================  ===============================================================
find the command       404 problem details for an unknown name
authenticate           bearer token, validated locally from the tenant's JWKS, and its
                       sign-in still standing (not ended by logout or an administrator):
                       401 with ``WWW-Authenticate`` per RFC 6750
authorize              the caller's role groups must grant the command and the names of
                       the parameters sent, and a scoped grant only a command that keeps
                       to its scope: 403, audited (R1)
parse and validate     400 problem details naming the parameter and what is allowed
step-up                sensitive commands need a second factor younger than the tenant's
                       window: 401 with the RFC 9470 challenge; a role holder's token
                       without a second factor gets it before authorization (A8)
idempotency            a write retried with the same ``Idempotency-Key`` gets the first answer
run and audit          the command, its audit record and its idempotency record commit in
                       one transaction; no audit record, no change (503); a listing asked
                       for one object by its identity that finds none is a 404, audited
                       like any failure
=====================  ===============================================================
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.audit import events
from bastion.audit.events import current_request
from bastion.audit.refusals import ANONYMOUS
from bastion.authority.context import Authority
from bastion.authority.sessions import ACR_TWO_FACTORS, SECOND_FACTOR_METHODS, ended_sign_in
from bastion.authority.token_validation import (
    KeyLookup,
    unverified_claim,
    validate_access_token,
)
from bastion.directory.role_groups import grants_of
from bastion.directory.tenants import Tenant, find_tenant
from bastion.errors import (
    BastionError,
    Conflict,
    InvalidToken,
    NotFound,
    StoreUnavailable,
    UnsupportedMediaType,
    UsageError,
)
from bastion.plane import access, idempotency, paging, remote_keys
from bastion.plane.context import Caller, CommandContext
from bastion.plane.declare import CommandSpec
from bastion.plane.errors import CommandNotFound, Forbidden, StepUpRequired
from bastion.plane.scope import Scope
from bastion.plane.service import Service
from bastion.text import escape_control, human_duration
from bastion.web.common import authority_of, base_url
from bastion.web.edge import COMMAND_LIMIT

#: refused while it streams, before authentication (``bastion.web.edge``)
MAX_BODY = COMMAND_LIMIT
#: parameters are flat objects of values and lists: deeper JSON is refused, not parsed on
MAX_DEPTH = 32


def _problem(exc: BastionError, request: Request) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, StepUpRequired):
        max_age = f", max_age={exc.max_age}" if exc.max_age is not None else ""
        headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_user_authentication", '
            f'error_description="{exc.detail}"{max_age}, '
            f'acr_values="{exc.acr_values}"'
        )
    elif isinstance(exc, InvalidToken):
        if exc.extra.get("missing"):
            headers["WWW-Authenticate"] = 'Bearer realm="bastion"'
        else:
            description = exc.detail.replace('"', "'")
            headers["WWW-Authenticate"] = (
                f'Bearer realm="bastion", error="invalid_token", error_description="{description}"'
            )
    body = exc.problem_details(request.url.path)
    body.pop("missing", None)
    return JSONResponse(
        body, status_code=exc.status, headers=headers, media_type="application/problem+json"
    )


def services_of(request: Request) -> dict[str, Service]:
    """The services of the application serving ``request``, by name (``create_app``)."""
    services: dict[str, Service] = request.app.state.services
    return services


def catalog(request: Request) -> Response:
    """The catalog, with a strong ``ETag`` (a hash of its JSON, also given in the body as
    ``version``) and ``Cache-Control: no-cache``: clients keep it and revalidate it with
    ``If-None-Match``, which is answered ``304`` while it is unchanged."""
    name = request.path_params["service"]
    service = services_of(request).get(name)
    if service is None:
        return _problem(CommandNotFound(f"there is no service '{name}'."), request)
    content, etag = service.catalog()
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    # RFC 9110 section 13.1.2: a list of entity tags, or "*", compared weakly
    asked = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/") for tag in asked.split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def _spec(request: Request, service: str, name: str) -> CommandSpec:
    found = services_of(request).get(service)
    spec = found.get(name) if found is not None else None
    if spec is None:
        raise CommandNotFound(
            f"{service} has no command '{name}'.",
            hint=f"GET /api/{service}/commands lists them.",
        )
    return spec


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("This command needs an access token.", missing=True)
    return token.strip()


def authenticate(request: Request, conn: Connection, service: str, now: float) -> Caller:
    """T8 and R2: the token's tenant is its issuer; its keys come from that tenant only.

    In the combined server the issuers are this server's own and their keys are read from
    the database; in a process serving services alone (docs/decisions/0010) the issuers are
    the configured authority's and their keys are the JWKS it publishes."""
    auth = authority_of(request)
    token = _bearer(request)
    issuer = unverified_claim(token, "iss")
    remote = remote_keys.of(request)
    prefix = remote.issuer_prefix if remote is not None else f"{base_url(request)}/t/"
    name = issuer[len(prefix) :] if issuer.startswith(prefix) else ""
    tenant: Tenant | None = (
        auth.tenants.get(name, lambda: find_tenant(conn, name)) if name else None
    )
    if tenant is None:
        raise InvalidToken("The token was issued by an unknown issuer.")
    claims = validate_access_token(
        token,
        issuer=issuer,
        audience=f"{base_url(request)}/api/{service}",
        keys=_key_lookup(auth, conn, tenant, issuer, remote),
        now=now,
        verified=auth.verified_tokens,
    )
    ended = ended_sign_in(
        conn,
        tenant_id=tenant.id,
        user_id=str(claims["sub"]),
        session_id=str(claims.get("sid", "")),
        issued_at=float(claims.get("iat", 0)),
    )
    if ended:
        raise InvalidToken(ended, hint="Sign in again.")
    return Caller(
        tenant=tenant,
        issuer=issuer,
        subject=claims["sub"],
        name=str(claims.get("preferred_username", "")),
        client_id=str(claims.get("client_id", "")),
        session_id=str(claims.get("sid", "")),
        amr=tuple(claims.get("amr", [])),
        acr=str(claims.get("acr", "")),
        auth_time=float(claims.get("auth_time", 0)),
        grants=grants_of(conn, claims["sub"]),
    )


def _key_lookup(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    issuer: str,
    remote: remote_keys.RemoteKeys | None,
) -> KeyLookup:
    if remote is None:
        return lambda refresh: auth.keys.public_keys(conn, tenant.id, refresh=refresh)
    # Fetched, and fetched again for an unknown kid, before this transaction began.
    return lambda refresh: remote.keys(issuer)


def _body(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise UsageError(f"the parameters are larger than {MAX_BODY} bytes.")
    try:
        raw = json.loads(body or b"{}")
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:
        raise UsageError("the body is not JSON.", hint="Send a JSON object of parameters.") from exc
    if not isinstance(raw, dict):
        raise UsageError("the body must be a JSON object of parameters.")
    _check_values(raw)
    return raw


def _too_deep() -> UsageError:
    return UsageError(
        f"the parameters are nested more than {MAX_DEPTH} levels deep.",
        hint="Send a JSON object of parameters: values, lists and small objects.",
    )


def _check_values(raw: dict[str, Any]) -> None:
    """Refuse JSON no parameter can hold: nesting deeper than ``MAX_DEPTH``, and strings
    with an unpaired surrogate (which cannot be encoded for any database)."""
    stack: list[tuple[Any, int, str]] = [(value, 2, name) for name, value in raw.items()]
    if any(_unpaired_surrogate(name) for name in raw):
        raise UsageError("a parameter's name holds an unpaired surrogate.")
    while stack:
        value, depth, parameter = stack.pop()
        if isinstance(value, str):
            if _unpaired_surrogate(value):
                raise UsageError(
                    f"parameter '{parameter}': holds an unpaired surrogate.",
                    hint="Send text as valid Unicode.",
                    parameter=parameter,
                )
        elif isinstance(value, list | dict):
            if depth > MAX_DEPTH:
                raise _too_deep()
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1, parameter) for item in items)


def _unpaired_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def _check_media_type(request: Request, body: bytes) -> None:
    """Parameters are JSON: a body of any other declared type is refused (415)."""
    if not body:
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"the parameters must be sent as application/json, not '{media_type or 'nothing'}'.",
            hint="Send a JSON object with Content-Type: application/json.",
        )


def _paging(spec: CommandSpec, raw: dict[str, Any]) -> tuple[str | None, int, bool]:
    """Take ``cursor``, ``page_size`` and ``count`` out of a listing command's parameters."""
    if not spec.lists:
        return None, 0, False
    cursor = raw.pop("cursor", None)
    size = raw.pop("page_size", paging.DEFAULT_PAGE_SIZE)
    count = raw.pop("count", False)
    if not isinstance(count, bool):
        raise UsageError("parameter 'count': must be true or false.", parameter="count")
    if cursor is not None and not isinstance(cursor, str):
        raise UsageError(
            "parameter 'cursor': must be the string a previous page returned.", parameter="cursor"
        )
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= paging.MAX_PAGE_SIZE:
        raise UsageError(
            f"parameter 'page_size': must be a whole number from 1 to {paging.MAX_PAGE_SIZE}.",
            parameter="page_size",
        )
    return cursor, size, count


def _parameters(spec: CommandSpec, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arguments for the function, the same as JSON for audit and cursors)."""
    try:
        model = spec.parameters.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        allowed = _allowed(spec, str(first["loc"][0]) if first["loc"] else "")
        raise UsageError(
            f"parameter '{where}': {first['msg']}.",
            hint=allowed,
            parameter=where,
            errors=[
                {"parameter": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ],
        ) from exc
    arguments = {name: getattr(model, name) for name in type(model).model_fields}
    return arguments, model.model_dump(mode="json")


def _allowed(spec: CommandSpec, name: str) -> str:
    schema = spec.parameters.model_json_schema()
    properties = schema.get("properties", {})
    if name not in properties:
        return f"{spec.name} takes: {', '.join(properties) or 'no parameters'}."
    described = properties[name].get("description")
    return f"{name}: {described}" if described else f"see the catalog entry of {spec.name}."


def _step_up(spec: CommandSpec, caller: Caller, now: float) -> None:
    window = caller.tenant.policy.step_up_window
    if not spec.sensitive:
        return
    if caller.acr != ACR_TWO_FACTORS or now - caller.auth_time > window:
        raise StepUpRequired(
            f"{spec.name} needs a second factor from the last {human_duration(window)}.",
            max_age=window,
            acr_values=ACR_TWO_FACTORS,
        )


def _two_factors(caller: Caller) -> None:
    """A8 (docs/decisions/0018): a role holder's token must come from a sign-in with a
    second factor. Roles are read at each command, so a role granted after a password-only
    sign-in finds such a token here: RFC 9470 asks for the second factor."""
    if caller.grants and not SECOND_FACTOR_METHODS & set(caller.amr):
        raise StepUpRequired(
            "your account holds an administrative role, which needs a sign-in with a "
            "second factor.",
            acr_values=ACR_TWO_FACTORS,
        )


def run_command(request: Request, body: bytes) -> Response:
    auth = authority_of(request)
    service, name = request.path_params["service"], request.path_params["name"]
    started = time.perf_counter()
    now = auth.now()
    spec = _spec(request, service, name)
    _check_media_type(request, body)
    if not spec.reads_only:
        with auth.store.read() as conn:
            caller = _authenticated(request, conn, spec, now)
        call = _Call(auth, spec, caller, now, started)
        return _audited(request, call, body, snapshot=None)
    # A read sees one snapshot from the token check to its last row.
    with auth.store.read() as snapshot:
        call = _Call(auth, spec, _authenticated(request, snapshot, spec, now), now, started)
        return _audited(request, call, body, snapshot=snapshot)


def _authenticated(request: Request, conn: Connection, spec: CommandSpec, now: float) -> Caller:
    """The caller, or a 401 that is audited once per source and minute (L1)."""
    try:
        return authenticate(request, conn, spec.service, now)
    except InvalidToken as exc:
        tenant = _claimed_tenant(request, conn)
        ctx = current_request.get()
        if tenant is not None:
            repeats = ANONYMOUS.due(tenant.id, ctx.source if ctx else None, now)
            if repeats is not None:
                with authority_of(request).store.begin() as writer:
                    events.record(
                        writer,
                        tenant_id=tenant.id,
                        type="command.unauthenticated",
                        outcome="denied",
                        now=now,
                        service=spec.service,
                        command=spec.name,
                        error=exc.problem,
                        reason=exc.detail,
                        repeats=repeats,
                    )
        raise


def _claimed_tenant(request: Request, conn: Connection) -> Tenant | None:
    """The tenant of this server whose issuer a (possibly forged) bearer token names."""
    try:
        issuer = unverified_claim(_bearer(request), "iss")
    except InvalidToken:
        return None
    remote = remote_keys.of(request)
    prefix = remote.issuer_prefix if remote is not None else f"{base_url(request)}/t/"
    name = issuer[len(prefix) :] if issuer.startswith(prefix) else ""
    if not name:
        return None
    return authority_of(request).tenants.get(name, lambda: find_tenant(conn, name))


def _audited(
    request: Request, call: _Call, body: bytes, *, snapshot: Connection | None
) -> Response:
    """L1: every refusal of an authenticated caller, and every failure, leaves one record.
    Refusals found inside :func:`_authorized` (403, cursor tampering, a failed command) are
    recorded there, with what they know; the rest here."""
    try:
        return _authorized(request, call, body, snapshot=snapshot)
    except _Unrecorded as wrapped:
        exc = wrapped.error
        outcome = "denied" if isinstance(exc, StepUpRequired) else "failure"
        call.audit_alone(wrapped.params, outcome=outcome, error=exc.problem)
        raise exc from None
    except BastionError:
        raise
    except Exception:
        # A crash (500): its trace goes to the log (``on_crash``), its fact to the audit log.
        call.audit_alone({}, outcome="failure", error="internal-error")
        raise


class _Unrecorded(Exception):
    """A refusal not yet in the audit log, and the parameters known when it was found."""

    def __init__(self, error: BastionError, params: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.params = params


SECRET_PARAMETERS = frozenset({"password", "secret", "code", "token"})


@dataclass(frozen=True)
class _Call:
    """One call of a command: which, by whom, when; and how it is recorded in the audit log."""

    auth: Authority
    spec: CommandSpec
    caller: Caller
    now: float
    #: ``time.perf_counter()`` when the request arrived, for the recorded duration
    started: float

    def audit_fields(
        self,
        params: dict[str, Any],
        *,
        outcome: str,
        error: str | None,
        kind: str = "command",
        targets: list[str] | None = None,
    ) -> dict[str, Any]:
        caller = self.caller
        return {
            "tenant_id": caller.tenant.id,
            "type": kind,
            "outcome": outcome,
            "now": self.now,
            "actor_id": caller.subject,
            "actor_name": caller.name,
            "client_id": caller.client_id,
            "service": self.spec.service,
            "command": self.spec.name,
            "parameters": {
                k: ("[redacted]" if k in SECRET_PARAMETERS else v) for k, v in params.items()
            },
            "amr": list(caller.amr),
            "session_id": caller.session_id,
            "targets": targets or [],
            "error": error,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
        }

    def audit(self, conn: Connection, params: dict[str, Any], **how: Any) -> None:
        """Record the call in ``conn``'s transaction."""
        events.record(conn, **self.audit_fields(params, **how))

    def audit_alone(self, params: dict[str, Any], **how: Any) -> None:
        """Record the call in a transaction of its own (a refusal or a failure: the
        command's own transaction, if any, rolled back)."""
        with self.auth.store.begin() as conn:
            self.audit(conn, params, **how)


@dataclass(frozen=True)
class _Body:
    """What the command's body runs with, once the call is authorized and validated."""

    arguments: dict[str, Any]
    #: the same as JSON, for the audit record and the cursor's binding
    params: dict[str, Any]
    scope: Scope
    #: what ``spec.prepare`` computed before any transaction
    prepared: dict[str, Any]
    request_id: str | None
    #: for a listing: where the page starts, its size, and what its cursor is bound to
    after: list[Any] | None
    page_size: int
    binding: paging.CursorBinding
    #: the first page also says how many objects the listing holds (``"total"``)
    count: bool = False


def _authorized(
    request: Request, call: _Call, body: bytes, *, snapshot: Connection | None
) -> Response:
    auth, spec, caller = call.auth, call.spec, call.caller
    try:
        _two_factors(caller)  # A8: a role holder's token without a second factor
    except StepUpRequired as exc:
        raise _Unrecorded(exc, {}) from exc
    try:
        raw = _body(body)
    except UsageError as exc:
        raise _Unrecorded(exc, {}) from exc
    try:
        cursor, page_size, count = _paging(spec, raw)
    except UsageError as exc:
        raise _Unrecorded(exc, raw) from exc
    # Authorization looks only at the command and the names of the parameters sent, so a
    # caller without the role learns nothing about what the command would accept.
    used = set(raw)
    scope = access.authorize(caller.grants, spec, used, caller.tenant.id)
    if scope is None:
        call.audit_alone(raw, outcome="denied", error="forbidden")
        raise Forbidden(
            f"your roles do not allow {spec.name}"
            + (f" with {', '.join(sorted(used))}" if used else "")
            + ".",
            hint="Ask an administrator for a role that grants it.",
            command=spec.name,
        )
    if not scope.unrestricted and not spec.scoped:
        call.audit_alone(raw, outcome="denied", error="forbidden")
        raise Forbidden(
            f"{spec.name} acts on objects of the whole tenant, and your role groups allow it "
            "only within a scope.",
            hint="Ask an administrator for a role group without a scope that grants it.",
            command=spec.name,
        )
    try:
        arguments, params = _parameters(spec, raw)
        _step_up(spec, caller, call.now)
    except (UsageError, StepUpRequired) as exc:
        raise _Unrecorded(exc, raw) from exc
    command = f"{spec.service}/{spec.name}"
    binding = paging.CursorBinding(caller.tenant.id, caller.subject, command, params)
    try:
        after = paging.decode_cursor(auth.keyring, binding, cursor) if cursor else None
    except paging.BadCursor:
        call.audit_alone(
            params, outcome="denied", error="cursor_tampering", kind="security.cursor_tampering"
        )
        raise
    ctx_request = current_request.get()
    key = request.headers.get(idempotency.HEADER)
    try:
        replay = (
            _Replay(idempotency.check_key(key), command, idempotency.digest(params))
            if key is not None and not spec.reads_only
            else None
        )
        # Slow preparation (a password hash) happens here, before any transaction holds a
        # lock.
        prepared = spec.prepare(auth.hasher, arguments) if spec.prepare is not None else {}
    except BastionError as exc:
        raise _Unrecorded(exc, params) from exc
    work = _Body(
        arguments=arguments,
        params=params,
        scope=scope,
        prepared=prepared,
        request_id=ctx_request.request_id if ctx_request else None,
        after=after,
        page_size=page_size,
        binding=binding,
        count=count and after is None,
    )
    try:
        answer = _execute(call, work, replay=replay, snapshot=snapshot)
    except BastionError as exc:
        if isinstance(exc, StoreUnavailable):
            raise  # nothing can be recorded either
        # The command's changes rolled back; its refusal or failure is still recorded.
        call.audit_alone(
            params,
            outcome="denied" if isinstance(exc, Forbidden) else "failure",
            error=exc.problem,
        )
        raise
    except IntegrityError as exc:
        if replay is not None:
            # An identical request won the race: this one's change rolled back; answer
            # with the winner's result.
            with auth.store.begin() as conn:
                previous = replay.stored(conn, caller)
            if previous is not None:
                return _Answer.stored(previous).response()
        conflict = Conflict(
            "another change to the same object happened at the same moment.",
            hint="Read the object again, then retry.",
        )
        raise _Unrecorded(conflict, params) from exc
    return answer.response()


@dataclass(frozen=True)
class _Replay:
    key: str
    command: str
    digest: str

    def stored(self, conn: Connection, caller: Caller) -> dict[str, Any] | None:
        return idempotency.stored(
            conn,
            tenant_id=caller.tenant.id,
            subject=caller.subject,
            key=self.key,
            command=self.command,
            params_digest=self.digest,
        )


@dataclass(frozen=True)
class _Answer:
    """A command's answer, already JSON, and the ids of the objects it names (for audit)."""

    content: bytes
    targets: list[str]
    replayed: bool = False

    @classmethod
    def stored(cls, body: dict[str, Any]) -> _Answer:
        return cls(_json(body), [], replayed=True)

    def response(self) -> Response:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return Response(self.content, media_type="application/json", headers=headers)


def _json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _execute(
    call: _Call, work: _Body, *, replay: _Replay | None, snapshot: Connection | None
) -> _Answer:
    """Run the command, its audit record and its idempotency record in one transaction.

    A read runs in its read-only ``snapshot``, and its record is committed together with
    those of concurrent reads before the answer is given (``bastion.audit.group_commit``)."""
    if snapshot is not None:
        answer = _run_body(call, work, snapshot)
        call.auth.audit_reads.record(
            **call.audit_fields(work.params, outcome="success", error=None, targets=answer.targets)
        )
        return answer
    with call.auth.store.begin() as conn:
        if replay is not None:
            previous = replay.stored(conn, call.caller)
            if previous is not None:
                call.audit(conn, work.params, outcome="replayed", error=None)
                return _Answer.stored(previous)
        answer = _run_body(call, work, conn)
        call.audit(conn, work.params, outcome="success", error=None, targets=answer.targets)
        if replay is not None:
            idempotency.remember(
                conn,
                tenant_id=call.caller.tenant.id,
                subject=call.caller.subject,
                key=replay.key,
                command=replay.command,
                params_digest=replay.digest,
                response=json.loads(answer.content),
                now=call.now,
            )
    return answer


def _run_body(call: _Call, work: _Body, conn: Connection) -> _Answer:
    """The command itself, and its answer: one page for a listing."""
    spec = call.spec
    ctx = CommandContext(
        conn=conn,
        caller=call.caller,
        now=call.now,
        request_id=work.request_id,
        hasher=call.auth.hasher,
        scope=work.scope,
        prepared=work.prepared,
    )
    result = spec.func(ctx, **work.arguments)
    if spec.page is None:
        return _Answer(
            b'{"result":' + spec.output.dump_json(result) + b"}",
            _ids(result if isinstance(result, list) else [result]),
        )
    page = paging.read_page(conn, result, work.after, work.page_size)
    if not page.items and work.after is None:
        _require_found(spec, work.arguments)
    next_cursor = (
        paging.encode_cursor(call.auth.keyring, work.binding, page.last_key)
        if page.last_key is not None
        else None
    )
    total = b',"total":' + _json(paging.count(conn, result)) if work.count else b""
    # One call serializes the whole page: per-item conversion was most of a page's cost.
    return _Answer(
        b'{"items":'
        + spec.page.dump_json(page.items)
        + b',"next":'
        + _json(next_cursor)
        + total
        + b"}",
        _ids(page.items[:MAX_TARGETS]),
    )


def _require_found(spec: CommandSpec, arguments: dict[str, Any]) -> None:
    """A listing asked for one object by name (``Get-Mailbox -Identity alice``) that names
    nothing answers 404, as a command that gets one object does: an empty list would let a
    script take "no such mailbox" for success. Objects outside the caller's scope are not
    listed either, so they are not found in the same words (R2)."""
    name = spec.identifies
    value = arguments.get(name) if name is not None else None
    if value is None:
        return
    fields = spec.parameters.model_fields
    others = [k for k, v in arguments.items() if k != name and v != fields[k].default]
    shown = escape_control(str(value))
    raise NotFound(
        f"no {spec.noun} '{shown}' in this tenant"
        + (f" matches {', '.join(others)}." if others else "."),
        hint=f"{spec.name} without {name} lists them.",
        parameter=name,
    )


MAX_TARGETS = 100


def _ids(objects: list[Any]) -> list[str]:
    """The ids of the objects a command answered with (read, created, changed or removed);
    a listing page names at most ``MAX_TARGETS`` of its objects."""
    found = []
    for item in objects[:MAX_TARGETS]:
        value = item.get("id") if isinstance(item, dict) else getattr(item, "id", None)
        if isinstance(value, str):
            found.append(value)
    return found


async def command_endpoint(request: Request) -> Response:
    body = await request.body()
    try:
        return await run_in_threadpool(run_command, request, body)
    except BastionError as exc:
        return _problem(exc, request)


async def catalog_endpoint(request: Request) -> Response:
    return catalog(request)


routes = [
    Route("/api/{service}/commands", catalog_endpoint, methods=["GET"]),
    Route("/api/{service}/commands/{name}", command_endpoint, methods=["POST"]),
]
