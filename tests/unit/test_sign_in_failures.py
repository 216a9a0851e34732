"""Sign-in failures through one object (:class:`bastion.authority.signin.Failures`), in
process with the real store: each refusal is audited as ``sign_in.<kind>``, committed, and a
wrong credential counts against its own counter and the address's (A3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from bastion.authority import throttle
from bastion.authority.signin import Attempt, Failures, PasswordVerdict, check_password
from bastion.core.config import Settings
from bastion.core.errors import SignInFailed
from bastion.directory.tenants import Tenant
from bastion.directory.users import User
from bastion.server.bootstrap import new_tenant, new_user
from bastion.server.context import ServerContext
from bastion.store.schema import audit_events

ADDRESS = "127.0.0.1"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ServerContext, Tenant, User]]:
    auth = ServerContext.open(Settings(data_dir=tmp_path))
    with auth.store.begin() as conn:
        tenant = new_tenant(auth, conn, name="acme", display_name="Acme")
        user = new_user(
            auth,
            conn,
            tenant,
            upn="ann@acme",
            display_name="Ann",
            password="correct horse battery",
            mfa_state="disabled",
        )
    yield auth, tenant, user
    auth.close()


def _last(conn: Connection, type: str) -> Any:
    rows = conn.execute(select(audit_events).where(audit_events.c.type == type)).all()
    assert rows, f"no {type} record"
    return rows[-1]


def test_a_refusal_is_audited_with_its_actor_client_and_flow(
    setup: tuple[ServerContext, Tenant, User],
) -> None:
    auth, tenant, user = setup
    attempt = Attempt(tenant, ADDRESS, client_id="bastion-cli", flow="challenge")
    with auth.store.begin() as conn:
        fail = Failures(auth, conn, attempt, auth.now(), user=user)
        refusal = fail.refuse("otp_replay", "That code was already used.", "Wait.")
        record = _last(conn, "sign_in.otp_replay")
    assert isinstance(refusal, SignInFailed)
    assert (refusal.detail, refusal.hint, refusal.keep_changes) == (
        "That code was already used.",
        "Wait.",
        True,
    )
    assert refusal.extra == {"reason": "otp_replay"}
    assert (record.outcome, record.actor_id, record.actor_name, record.client_id) == (
        "failure",
        user.id,
        "ann@acme",
        "bastion-cli",
    )
    assert record.data["flow"] == "challenge"


def test_an_unknown_name_is_audited_and_counted_by_the_name_typed(
    setup: tuple[ServerContext, Tenant, User],
) -> None:
    auth, tenant, _ = setup
    attempt = Attempt(tenant, ADDRESS)
    now = auth.now()
    with auth.store.begin() as conn:
        with pytest.raises(SignInFailed) as refused:
            check_password(
                auth, conn, attempt, upn="nobody@acme", verdict=PasswordVerdict(False), now=now
            )
        record = _last(conn, "sign_in.password_failure")
        name = throttle.state(conn, throttle.password_key(tenant.id, "nobody@acme"), now)
        source = throttle.state(conn, throttle.source_key(tenant.id, ADDRESS), now)
    assert refused.value.detail == "The user name or password is incorrect."
    assert (record.actor_id, record.actor_name, record.client_id) == (None, "nobody@acme", None)
    assert "flow" not in record.data
    assert (name.failures, source.failures) == (1, 1)


def test_a_wrong_factor_counts_and_says_how_many_tries_are_left(
    setup: tuple[ServerContext, Tenant, User],
) -> None:
    auth, tenant, user = setup
    key = throttle.factor_key(tenant.id, user.id, throttle.OTP)
    now = auth.now()
    with auth.store.begin() as conn:
        fail = Failures(auth, conn, Attempt(tenant, ADDRESS, known=True), now, user=user)
        refusal = fail.wrong_factor(key, "mfa_failure", "That code is not correct.", then="retry")
        counted = throttle.state(conn, key, now)
        address = throttle.state(conn, throttle.source_key(tenant.id, ADDRESS), now)
    left = throttle.tries_left(auth.settings, key, counted)
    assert refusal.hint == f"{left} tries are left before a pause. Retry."
    assert refusal.extra == {"reason": "mfa_failure"}
    # a browser that signed this user in before is not counted against its address
    assert (counted.failures, address.failures) == (1, 0)
