"""The command plane's pipeline, one step at a time, in process (issue 11 items 4 and 7).

Each step takes the call's state and either adds what it finds or raises the documented
error; these tests run a step alone on a state built for it. The steps that read the store
(authenticate) and the runner's audit records use a real store in a temporary directory.
The same behaviour end to end is in tests/e2e/test_command_plane.py and its neighbours."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from bastion.authority.keys import create_signing_key
from bastion.authority.sign_in_sessions import ACR_TWO_FACTORS
from bastion.authority.tokens import sign
from bastion.core.config import Settings
from bastion.core.errors import InvalidToken, UnsupportedMediaType, UsageError
from bastion.directory.role_groups import Grant, ScopeFilter
from bastion.directory.tenants import Tenant, create_tenant
from bastion.directory.users import create_user
from bastion.http.request_limits import COMMAND_LIMIT
from bastion.plane import listings as paging
from bastion.plane import pipeline
from bastion.plane.call import Call, Incoming
from bastion.plane.command_context import Caller
from bastion.plane.command_errors import CommandNotFound, Forbidden, StepUpRequired
from bastion.plane.declare import CommandSpec
from bastion.plane.service import built_in_roles
from bastion.plane.steps import assurance, authentication, parameters, permission, preparation
from bastion.server.context import ServerContext
from bastion.services import SERVICES
from bastion.store.schema import audit_events

#: the server's commands by service and name, as ``plane.http`` hands them to the pipeline
REGISTRY = {service.name: {spec.name: spec for spec in service} for service in SERVICES}
ROLES = built_in_roles(SERVICES)
BASE = "https://bastion.localhost"
NOW = 1_800_000_000.0
TENANT = Tenant(id="t-1", name="contoso", display_name="Contoso")
ADMIN = Grant(role="Global Administrator", role_group="admins", scope=None)
HELPDESK_IN_SALES = Grant(
    role="Helpdesk", role_group="sales-desk", scope=ScopeFilter(department="Sales")
)


def spec(service: str, name: str) -> CommandSpec:
    return REGISTRY[service][name]


def caller(
    *grants: Grant,
    amr: tuple[str, ...] = ("pwd", "otp", "mfa"),
    auth_time: float = NOW,
    tenant: Tenant = TENANT,
) -> Caller:
    return Caller(
        tenant=tenant,
        issuer=f"{BASE}/t/{tenant.name}",
        subject="u-1",
        name="alice@contoso.example",
        client_id="bastion-cli",
        session_id="",
        amr=amr,
        acr=ACR_TWO_FACTORS if "mfa" in amr else "",
        auth_time=auth_time,
        grants=grants,
    )


def incoming(
    name: str = "Get-User",
    *,
    service: str = "directory",
    body: bytes = b"",
    content_type: str = "application/json",
    token: str = "",
) -> Incoming:
    return Incoming(
        service=service,
        name=name,
        body=body,
        authorization=f"Bearer {token}" if token else "",
        content_type=content_type,
        idempotency_key=None,
        base_url=BASE,
    )


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerContext]:
    opened = ServerContext.open(Settings(data_dir=tmp_path_factory.mktemp("pipeline")))
    yield opened
    opened.close()


def state(
    auth: ServerContext,
    command: str = "Get-User",
    *,
    service: str = "directory",
    who: Caller | None = None,
    raw: dict[str, Any] | None = None,
    body: bytes = b"",
    content_type: str = "application/json",
    now: float = NOW,
) -> Call:
    """A call as the steps before the one under test would have left it."""
    call = Call(
        auth=auth,
        incoming=incoming(command, service=service, body=body, content_type=content_type),
        commands=REGISTRY,
        roles=ROLES,
        now=now,
        started=time.perf_counter(),
    )
    call.found = REGISTRY[service].get(command)
    call.signed_in = who
    call.raw = dict(raw or {})
    return call


# --- the table ---------------------------------------------------------------------------


def test_the_table_lists_the_steps_in_the_order_they_run() -> None:
    lines = (pipeline.__doc__ or "").splitlines()
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"=+ +=+", line)]
    table = lines[rules[0] + 1 : rules[-1]]
    documented = [line.split()[0] for line in table if line and not line.startswith(" ")]
    assert documented == [step.__name__ for step in pipeline.STEPS]


def test_the_body_limit_is_the_edges() -> None:
    assert parameters.MAX_BODY == COMMAND_LIMIT


# --- find the command, media type --------------------------------------------------------


def test_find_command_refuses_an_unknown_name(auth: ServerContext) -> None:
    call = state(auth, "Get-Nothing")
    with pytest.raises(CommandNotFound, match="directory has no command 'Get-Nothing'"):
        pipeline.find_command(call)
    call = state(auth, "Get-User")
    pipeline.find_command(call)
    assert call.spec is spec("directory", "Get-User")


def test_parameters_in_another_media_type_are_refused(auth: ServerContext) -> None:
    with pytest.raises(UnsupportedMediaType, match="not 'text/plain'") as refused:
        parameters.check_media_type(state(auth, body=b"{}", content_type="text/plain"))
    assert refused.value.status == 415
    parameters.check_media_type(state(auth, body=b"{}", content_type="application/json; x=1"))
    parameters.check_media_type(state(auth, body=b"", content_type=""))  # no parameters


# --- authenticate ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(auth: ServerContext) -> tuple[Tenant, Any]:
    """A tenant of the store, a user in it, and its signing key."""
    with auth.store.begin() as conn:
        tenant = create_tenant(conn, name="fabrikam", display_name="F", now=NOW, policy=None)
        create_signing_key(conn, auth.keyring, tenant.id, NOW)
        user = create_user(
            conn,
            tenant_id=tenant.id,
            upn="bob@fabrikam",
            display_name=None,
            password_hash=None,
            mfa_state="enabled",
            now=NOW,
        )
    with auth.store.read() as conn:
        key = auth.keys.active_key(conn, tenant.id)
    return tenant, (user.id, key)


def token(signed: tuple[Tenant, Any], *, audience: str, now: float = NOW) -> str:
    tenant, (user_id, key) = signed
    claims = {
        "iss": f"{BASE}/t/{tenant.name}",
        "aud": audience,
        "sub": user_id,
        "iat": now,
        "exp": now + 300,
        "amr": ["pwd", "otp", "mfa"],
        "acr": ACR_TWO_FACTORS,
        "auth_time": now,
    }
    return str(sign(key, "at+jwt", claims))


def unauthenticated_records(auth: ServerContext, tenant: Tenant) -> list[dict[str, Any]]:
    with auth.store.read() as conn:
        rows = conn.execute(
            select(audit_events.c.data).where(
                audit_events.c.tenant_id == tenant.id,
                audit_events.c.type == "command.unauthenticated",
            )
        ).all()
    return [dict(row.data) for row in rows]


def records(auth: ServerContext, tenant: Tenant, kind: str) -> list[tuple[str, str, Any]]:
    """(outcome, error, parameters) of the tenant's audit records of ``kind``."""
    with auth.store.read() as conn:
        rows = conn.execute(
            select(audit_events.c.outcome, audit_events.c.data)
            .where(audit_events.c.tenant_id == tenant.id, audit_events.c.type == kind)
            .order_by(audit_events.c.seq)
        ).all()
    return [(row.outcome, row.data.get("error"), row.data.get("parameters")) for row in rows]


def test_authenticate_refuses_a_token_for_another_service_and_records_it(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    tenant = signed[0]
    call = state(auth, "Get-User")
    call.incoming = incoming("Get-User", token=token(signed, audience=f"{BASE}/api/mail"))
    with pytest.raises(InvalidToken, match="another audience"):
        authentication.authenticate(call)
    assert call.signed_in is None
    [record] = unauthenticated_records(auth, tenant)
    assert record["command"] == "Get-User" and "audience" in record["reason"]


def test_authenticate_accepts_its_own_services_token(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    call = state(auth, "Get-User")
    call.incoming = incoming("Get-User", token=token(signed, audience=f"{BASE}/api/directory"))
    authentication.authenticate(call)
    assert call.caller.tenant.id == signed[0].id and call.caller.subject == signed[1][0]
    assert call.caller.grants == ()  # read from the directory, not from the token


def test_a_call_without_a_bearer_token_is_asked_for_one(auth: ServerContext) -> None:
    with pytest.raises(InvalidToken, match="needs an access token") as refused:
        authentication.authenticate(state(auth))
    assert refused.value.extra.get("missing") is True
    with pytest.raises(InvalidToken):
        authentication.bearer("Basic YWxpY2U6c2VjcmV0")


# --- two factors (A8) and step-up (RFC 9470) ---------------------------------------------


def test_the_two_factor_step_challenges_a_role_holders_one_factor_token(
    auth: ServerContext,
) -> None:
    with pytest.raises(StepUpRequired, match="administrative role") as challenged:
        assurance.require_two_factors(state(auth, who=caller(ADMIN, amr=("pwd",))))
    assert challenged.value.acr_values == ACR_TWO_FACTORS and challenged.value.max_age is None
    assurance.require_two_factors(state(auth, who=caller(ADMIN, amr=("pwd", "otp"))))
    assurance.require_two_factors(state(auth, who=caller(amr=("pwd",))))  # no role


def test_step_up_challenges_an_old_auth_time(auth: ServerContext) -> None:
    window = TENANT.policy.step_up_window
    old = caller(ADMIN, auth_time=NOW - window - 1)
    with pytest.raises(StepUpRequired, match="Remove-RoleGroup needs a second factor") as asked:
        assurance.step_up(state(auth, "Remove-RoleGroup", who=old))
    assert asked.value.max_age == window
    assurance.step_up(state(auth, "Remove-RoleGroup", who=caller(ADMIN, auth_time=NOW - window)))
    assurance.step_up(state(auth, "Get-User", who=old))  # not sensitive


def test_step_up_challenges_a_token_without_the_two_factor_acr(auth: ServerContext) -> None:
    with pytest.raises(StepUpRequired):
        assurance.step_up(state(auth, "Remove-RoleGroup", who=caller(ADMIN, amr=("pwd",))))


# --- parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b"{not json", "not JSON"),
        (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "nested more than 32 levels"),
        (b'{"a": "\\ud800"}', "unpaired surrogate"),
        (b" " * (COMMAND_LIMIT + 1), "larger than"),
    ],
)
def test_read_parameters_refuses_what_no_parameter_can_hold(
    auth: ServerContext, body: bytes, said: str
) -> None:
    call = state(auth, body=body)
    with pytest.raises(UsageError, match=said):
        parameters.read_parameters(call)
    assert call.raw == {}


def test_read_parameters_takes_a_json_object_and_no_body_as_none(auth: ServerContext) -> None:
    call = state(auth, body=b'{"identity": "alice"}')
    parameters.read_parameters(call)
    assert call.raw == {"identity": "alice"}
    call = state(auth, body=b"")
    parameters.read_parameters(call)
    assert call.raw == {}


@pytest.mark.parametrize(
    ("raw", "parameter"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": paging.MAX_PAGE_SIZE + 1}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"page_size": "10"}, "page_size"),
        ({"count": "yes"}, "count"),
        ({"cursor": 7}, "cursor"),
    ],
)
def test_paging_rejects_a_bad_page_size_count_or_cursor(
    auth: ServerContext, raw: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(UsageError, match=f"parameter '{parameter}'") as refused:
        parameters.take_paging(state(auth, raw=raw))
    assert refused.value.extra["parameter"] == parameter


def test_paging_takes_its_parameters_out_of_a_listings_and_only_a_listings(
    auth: ServerContext,
) -> None:
    call = state(auth, raw={"page_size": 5, "count": True, "cursor": "c", "department": "Sales"})
    parameters.take_paging(call)
    assert (call.cursor, call.page_size, call.count) == ("c", 5, True)
    assert call.raw == {"department": "Sales"} and call.known is call.raw
    call = state(auth, "New-User", raw={"page_size": 5})
    parameters.take_paging(call)
    assert call.raw == {"page_size": 5}  # left for validation to refuse


def test_validation_names_the_parameter_and_what_is_allowed(auth: ServerContext) -> None:
    call = state(auth, "Get-User", raw={"colour": "blue"})
    with pytest.raises(UsageError, match="parameter 'colour'") as refused:
        parameters.validate_parameters(call)
    assert "Get-User takes:" in (refused.value.hint or "")
    call = state(auth, "Get-User", raw={"identity": "alice"})
    parameters.validate_parameters(call)
    assert call.arguments["identity"] == call.params["identity"] == "alice"


# --- authorize ---------------------------------------------------------------------------


def test_authorize_denies_without_a_grant(auth: ServerContext) -> None:
    call = state(auth, "New-Mailbox", service="mail", who=caller(HELPDESK_IN_SALES), raw={})
    with pytest.raises(Forbidden, match="your roles do not allow New-Mailbox"):
        permission.authorize(call)
    call = state(auth, "Get-User", who=caller(), raw={"identity": "a"})
    with pytest.raises(Forbidden, match="do not allow Get-User with identity"):
        permission.authorize(call)


def test_authorize_finds_the_scope_of_the_grants_that_allow(auth: ServerContext) -> None:
    call = state(auth, "Set-UserMfa", who=caller(HELPDESK_IN_SALES), raw={"identity": "a"})
    permission.authorize(call)
    assert not call.scope.unrestricted
    call = state(auth, "Set-UserMfa", who=caller(HELPDESK_IN_SALES, ADMIN), raw={})
    permission.authorize(call)
    assert call.scope.unrestricted


def test_a_scoped_grant_cannot_run_a_command_on_the_whole_tenant(auth: ServerContext) -> None:
    whole_tenant = next(
        s for s in REGISTRY["directory"].values() if s.name.startswith("Get-") and not s.scoped
    )
    call = state(auth, whole_tenant.name, who=caller(HELPDESK_IN_SALES))
    permission.authorize(call)
    with pytest.raises(Forbidden, match="only within a scope"):
        permission.keep_to_scope(call)
    scoped = state(auth, "Set-UserMfa", who=caller(HELPDESK_IN_SALES))
    permission.authorize(scoped)
    permission.keep_to_scope(scoped)


# --- cursor, idempotency key -------------------------------------------------------------


def test_open_cursor_refuses_an_altered_cursor_as_a_security_event(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    tenant = signed[0]
    call = state(auth, "Get-User", who=caller(ADMIN, tenant=tenant))
    call.params = {"identity": None}
    call.cursor = "bm90.YSBjdXJzb3I"
    with pytest.raises(paging.BadCursor):
        preparation.open_cursor(call)
    assert call.after is None and call.known is call.params and call.refusal_recorded
    assert records(auth, tenant, "security.cursor_tampering") == [
        ("denied", "cursor_tampering", {"identity": None})
    ]


def test_open_cursor_reads_where_the_page_starts(auth: ServerContext) -> None:
    call = state(auth, "Get-User", who=caller(ADMIN))
    call.params = {"identity": None}
    preparation.open_cursor(call)
    assert call.binding is not None and call.after is None
    call.cursor = paging.encode_cursor(auth.keyring, call.binding, ["alice"])
    preparation.open_cursor(call)
    assert call.after == ["alice"]


def test_a_malformed_idempotency_key_is_refused_and_a_read_ignores_it(auth: ServerContext) -> None:
    write = state(auth, "New-User", who=caller(ADMIN))
    write.incoming = replace(write.incoming, idempotency_key="\x00bad")
    with pytest.raises(UsageError):
        preparation.check_idempotency_key(write)
    read = state(auth, "Get-User", who=caller(ADMIN))
    read.incoming = replace(read.incoming, idempotency_key="\x00bad")
    preparation.check_idempotency_key(read)
    assert read.replay is None


# --- the runner: one audit record per refusal of a known caller (L1) ---------------------


def signed_in_as(who: Caller) -> pipeline.Step:
    """A stand-in for ``authenticate``: the runner's records, without minting a token."""

    def sign_in(call: Call) -> None:
        call.signed_in = who

    return sign_in


def run(auth: ServerContext, steps: tuple[pipeline.Step, ...], body: bytes = b"") -> None:
    pipeline.run(auth, incoming("Get-User", body=body), REGISTRY, ROLES, steps=steps)


def test_a_refusal_is_recorded_once_with_the_parameters_known_when_found(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    tenant = signed[0]
    nobody = caller(tenant=tenant)  # two factors, no role
    steps = (
        pipeline.find_command,
        signed_in_as(nobody),
        parameters.read_parameters,
        parameters.take_paging,
        permission.authorize,
    )
    before = records(auth, tenant, "command")
    with pytest.raises(Forbidden):
        run(auth, steps, body=b'{"identity": "x", "page_size": 5}')
    assert records(auth, tenant, "command")[len(before) :] == [
        ("denied", "forbidden", {"identity": "x"})
    ]


def test_a_challenge_before_the_parameters_are_read_records_none_of_them(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    tenant = signed[0]
    one_factor_admin = caller(ADMIN, amr=("pwd",), tenant=tenant)
    steps = (pipeline.find_command, signed_in_as(one_factor_admin), assurance.require_two_factors)
    before = records(auth, tenant, "command")
    with pytest.raises(StepUpRequired):
        run(auth, steps, body=b'{"identity": "x"}')
    assert records(auth, tenant, "command")[len(before) :] == [("denied", "step-up-required", {})]


def test_a_crash_is_recorded_as_an_internal_error_and_raised(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    tenant = signed[0]

    def crash(call: Call) -> None:
        raise ZeroDivisionError

    before = records(auth, tenant, "command")
    with pytest.raises(ZeroDivisionError):
        run(auth, (pipeline.find_command, signed_in_as(caller(tenant=tenant)), crash))
    assert records(auth, tenant, "command")[len(before) :] == [("failure", "internal-error", {})]


def test_nothing_is_recorded_before_the_caller_is_known(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    tenant = signed[0]
    before = records(auth, tenant, "command")
    with pytest.raises(UnsupportedMediaType):
        pipeline.run(
            auth,
            incoming("Get-User", body=b"{}", content_type="text/plain"),
            REGISTRY,
            ROLES,
        )
    assert records(auth, tenant, "command") == before


def test_the_whole_table_refuses_a_caller_without_a_role_and_records_it_once(
    auth: ServerContext, signed: tuple[Tenant, Any]
) -> None:
    tenant = signed[0]
    sent = incoming(
        "Get-User",
        body=b'{"identity": "bob@fabrikam"}',
        token=token(signed, audience=f"{BASE}/api/directory", now=auth.now()),
    )
    before = records(auth, tenant, "command")
    with pytest.raises(Forbidden, match="do not allow Get-User with identity"):
        pipeline.run(auth, sent, REGISTRY, ROLES)
    assert records(auth, tenant, "command")[len(before) :] == [
        ("denied", "forbidden", {"identity": "bob@fabrikam"})
    ]
