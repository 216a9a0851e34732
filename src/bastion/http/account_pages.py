"""The account page: a signed-in person's own sign-ins, factors and password (S5, S6).

Server-rendered on the sign-in pages' web session and templates (docs/decisions/0032).
Every POST carries the session-bound CSRF token and ends with a 303. What each change asks:

- ending a sign-in: one factor within the tenant's step-up window (a step-up with the
  second factor, or the password again for a user who has none);
- a new password: the current one, checked and throttled like a sign-in;
- registering an authenticator: full reauthentication, the password and the second factor
  within the step-up window.

A credential change writes one ``notify.*`` record per notification address of the user
and offers to end every other sign-in.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.audit import events
from bastion.authority import factor_store, passwords, signin, throttle
from bastion.authority.credentials import set_password_hash
from bastion.authority.notifications import notify
from bastion.authority.parts import Authority
from bastion.authority.sign_in_sessions import (
    SignInSession,
    age_of_sign_in,
    clients_of_sessions,
    end_other_sessions,
    end_reason,
    find_session,
    revoke_session,
    sessions_of_user,
)
from bastion.core.errors import SignInFailed, UsageError
from bastion.directory.tenants import Tenant
from bastion.directory.users import User, get_user, set_mfa_state
from bastion.http import browser_sessions
from bastion.http.browser_sessions import WebSession
from bastion.http.endpoint_support import authority_of, in_thread, load_tenant, render
from bastion.http.sign_in_flow import redirect
from bastion.http.signin_pages import attempt_of, throttled
from bastion.store.schema import factors

_SESSION_REF = "account-session"
_CONTINUE_HERE = {"kind": "account"}


class _Gate(Exception):
    """The request cannot go on here: answer with ``response`` (a redirect to sign in)."""

    def __init__(self, response: Response) -> None:
        super().__init__("redirect")
        self.response = response


def _cookie(tenant: Tenant, ws: WebSession) -> tuple[str, str]:
    return browser_sessions.cookie_name(tenant), ws.cookie


def _sign_in_again(
    auth: Authority, conn: Connection, tenant: Tenant, ws: WebSession | None, now: float
) -> Response:
    """The login page, continuing back to the account page."""
    ws = browser_sessions.start_over(
        auth, conn, tenant, now, previous=ws, continuation=_CONTINUE_HERE
    )
    return redirect(f"/t/{tenant.name}/login", _cookie(tenant, ws))


@dataclass(frozen=True)
class _Visit:
    """A signed-in person at their account page, in one transaction: what answering needs."""

    auth: Authority
    conn: Connection
    tenant: Tenant
    ws: WebSession
    session: SignInSession
    user: User
    now: float

    def page(self, *, status: int = 200, **extra: Any) -> Response:
        """The account page: the person's sign-ins and factors, and ``extra`` (a notice, an
        error and its hint)."""
        auth, conn, tenant, user = self.auth, self.conn, self.tenant, self.user
        own = sessions_of_user(conn, tenant.id, user.id, tenant.policy, self.now)
        clients = clients_of_sessions(conn, [s.id for s in own])
        listed = [
            {
                "ref": auth.keyring.lookup_hash(_SESSION_REF, s.id),
                "started": _when(s.created_at),
                "last_used": _when(s.last_active_at),
                "clients": clients.get(s.id, []),
                "current": s.id == self.session.id,
            }
            for s in own
        ]
        context = {
            "tenant": tenant,
            "csrf": browser_sessions.csrf_token(auth, self.ws),
            "user": user,
            "sessions": listed,
            "factors": _factor_rows(conn, user.id),
            "can_add_totp": "totp" in tenant.policy.allowed_methods,
            **extra,
        }
        return render("account.html", context, status=status)

    def refused(self, status: int, error: str, hint: str | None = None) -> Response:
        """The account page again, saying why the change was not made."""
        return self.page(status=status, error=error, hint=hint)


def _signed_in(
    auth: Authority, conn: Connection, request: Request, tenant: Tenant, now: float
) -> _Visit:
    """The browser's live sign-in, or :class:`_Gate` to the login page."""
    ws = browser_sessions.load(auth, conn, tenant, request, now)
    if ws is None or ws.stage != "authenticated" or not ws.session_id or not ws.user_id:
        raise _Gate(_sign_in_again(auth, conn, tenant, ws, now))
    session = find_session(conn, tenant.id, ws.session_id)
    if session is None or session.user_id != ws.user_id or end_reason(session, tenant.policy, now):
        raise _Gate(_sign_in_again(auth, conn, tenant, ws, now))
    return _Visit(auth, conn, tenant, ws, session, get_user(conn, tenant.id, ws.user_id), now)


def _one_factor_recent(session: SignInSession, tenant: Tenant, now: float) -> bool:
    return age_of_sign_in(session, now) <= tenant.policy.step_up_window


def _fully_reauthenticated(
    conn: Connection, session: SignInSession, tenant: Tenant, now: float
) -> bool:
    """The password and (when the user has one) the second factor, both recent. A step-up
    renews only the second factor; the password was given when the session was created."""
    window = tenant.policy.step_up_window
    if now - session.created_at > window:
        return False
    if not factor_store.has_factor(conn, session.user_id):
        return True
    return session.mfa_time is not None and now - session.mfa_time <= window


def _ask_one_factor(
    auth: Authority,
    conn: Connection,
    tenant: Tenant,
    ws: WebSession,
    user: User,
    now: float,
) -> Response:
    """A step-up with the second factor, back to this page; the password for a user who
    has no second factor."""
    if factor_store.has_factor(conn, user.id):
        ws = browser_sessions.save(
            auth, conn, tenant, now, previous=ws, stage="stepup", continuation=_CONTINUE_HERE
        )
        return redirect(f"/t/{tenant.name}/login/mfa", _cookie(tenant, ws))
    return _sign_in_again(auth, conn, tenant, ws, now)


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


def _factor_rows(conn: Connection, user_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(factors.c.kind, factors.c.created_at)
        .where(factors.c.user_id == user_id, factors.c.confirmed.is_(True))
        .order_by(factors.c.created_at)
    ).all()
    return [{"kind": row.kind, "added": _when(row.created_at)} for row in rows]


def account_page(request: Request, form: dict[str, Any]) -> Response:
    auth = authority_of(request)
    now = auth.now()
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        try:
            visit = _signed_in(auth, conn, request, tenant, now)
        except _Gate as gate:
            return gate.response
        notice = {
            "ended": "The sign-in was ended.",
            "changed": "Your password was changed.",
            "removed": "Your authenticator app and its recovery codes were removed.",
        }
        return visit.page(notice=notice.get(request.query_params.get("done", "")))


def _checked(
    auth: Authority,
    conn: Connection,
    request: Request,
    tenant: Tenant,
    form: dict[str, Any],
    now: float,
) -> _Visit:
    browser_sessions.check_csrf(auth, browser_sessions.load(auth, conn, tenant, request, now), form)
    return _signed_in(auth, conn, request, tenant, now)


def _account_change(
    change: Callable[[_Visit, dict[str, Any]], Response],
) -> Callable[[Request, dict[str, Any]], Response]:
    """A POST of the account page: ``change`` answers it in one transaction, once the CSRF
    token is checked and the sign-in is live (else the browser goes to sign in)."""

    @functools.wraps(change)
    def endpoint(request: Request, form: dict[str, Any]) -> Response:
        auth = authority_of(request)
        now = auth.now()
        with auth.store.begin() as conn:
            tenant = load_tenant(conn, request)
            try:
                visit = _checked(auth, conn, request, tenant, form, now)
            except _Gate as gate:
                return gate.response
            return change(visit, form)

    return endpoint


@_account_change
def end_session_submit(visit: _Visit, form: dict[str, Any]) -> Response:
    """End one listed sign-in (``session``), or every other one (``session=others``)."""
    auth, conn, tenant, now = visit.auth, visit.conn, visit.tenant, visit.now
    session, user = visit.session, visit.user
    if not _one_factor_recent(session, tenant, now):
        return _ask_one_factor(auth, conn, tenant, visit.ws, user, now)
    ref = str(form.get("session", ""))
    ending_this = False
    if ref == "others":
        ended = end_other_sessions(conn, user.id, session.id, now)
    else:
        own = sessions_of_user(conn, tenant.id, user.id, tenant.policy, now)
        chosen = [s for s in own if auth.keyring.lookup_hash(_SESSION_REF, s.id) == ref]
        if not chosen:
            return visit.refused(
                400,
                "That sign-in is not one of yours, or it has already ended.",
                "Reload the page to see your sign-ins.",
            )
        revoke_session(conn, chosen[0].id, now)
        ended, ending_this = 1, chosen[0].id == session.id
    events.record(
        conn,
        tenant_id=tenant.id,
        type="session.ended_by_user",
        outcome="success",
        now=now,
        actor_id=user.id,
        actor_name=user.upn,
        session_id=session.id,
        ended=ended,
    )
    if ending_this:
        browser_sessions.end(auth, conn, visit.ws)
        return redirect(f"/t/{tenant.name}/login")
    return redirect(f"/t/{tenant.name}/account?done=ended")


def password_submit(request: Request, form: dict[str, Any]) -> Response:
    """A new password, given the current one (S6)."""
    auth = authority_of(request)
    now = auth.now()
    current = str(form.get("current_password", ""))
    new = str(form.get("new_password", ""))
    confirm = str(form.get("confirm_password", ""))
    end_others = form.get("end_others") == "on"
    with auth.store.begin() as conn:
        tenant = load_tenant(conn, request)
        try:
            visit = _checked(auth, conn, request, tenant, form, now)
        except _Gate as gate:
            return gate.response
        user = visit.user
        if not current:
            return visit.refused(400, "Enter your current password.")
        attempt = attempt_of(auth, request, tenant, user.id, now)
        try:
            signin.check_password_throttle(conn, attempt, upn=user.upn, now=now)
        except signin.Throttled as exc:
            return throttled(visit.refused(429, exc.detail, exc.hint), exc)
        context = passwords.context_words(
            tenant.name, tenant.display_name, user.upn, user.display_name
        )
        try:
            passwords.check_new_password(new, context)
        except UsageError as exc:
            return visit.refused(400, f"The new password cannot be used: {exc.detail}", exc.hint)
        if new != confirm:
            return visit.refused(400, "The new password and its confirmation differ.")
    # Argon2id runs between transactions, so it never holds a database lock.
    verdict = signin.verify_password(auth, user, current)
    new_hash = auth.hasher.hash(new) if verdict.matched else None
    try:
        with auth.store.begin() as conn:
            visit = _checked(auth, conn, request, tenant, form, now)
            user = visit.user
            if new_hash is None:
                fail = signin.Failures(auth, conn, attempt, now, user=user)
                fail.count(throttle.password_key(tenant.id, user.upn))
                raise fail.refuse("password_failure", "Your current password is not correct.")
            set_password_hash(conn, user, new_hash)
            notify(conn, tenant.id, user, "password_changed", now)
            if end_others:
                end_other_sessions(conn, user.id, visit.session.id, now)
    except _Gate as gate:
        return gate.response
    except SignInFailed as exc:
        # the failure is committed (it counts); the page is read in a new transaction
        with auth.store.begin() as conn:
            try:
                visit = _signed_in(auth, conn, request, tenant, now)
            except _Gate as gate:
                return gate.response
            return visit.refused(400, exc.detail, exc.hint)
    return redirect(f"/t/{tenant.name}/account?done=changed")


@_account_change
def add_totp_submit(visit: _Visit, form: dict[str, Any]) -> Response:
    """Register an authenticator app: only after full reauthentication (S6). A user without
    one goes to the registration page of the sign-in flow."""
    auth, conn, tenant, now = visit.auth, visit.conn, visit.tenant, visit.now
    if not _fully_reauthenticated(conn, visit.session, tenant, now):
        return _sign_in_again(auth, conn, tenant, visit.ws, now)
    if "totp" not in tenant.policy.allowed_methods or factor_store.has_factor(conn, visit.user.id):
        return visit.refused(
            409,
            "An authenticator app is registered already.",
            "Ask an administrator to reset your factors to register another one.",
        )
    ws = browser_sessions.save(
        auth, conn, tenant, now, previous=visit.ws, stage="enroll", continuation=_CONTINUE_HERE
    )
    return redirect(f"/t/{tenant.name}/login/enroll", _cookie(tenant, ws))


@_account_change
def remove_factor_submit(visit: _Visit, form: dict[str, Any]) -> Response:
    """Remove the authenticator app and its recovery codes: only after full reauthentication
    (S6). A user whose sign-in needs a second factor registers a new one at the next
    sign-in, as after an administrator's factor reset."""
    auth, conn, tenant, now, user = visit.auth, visit.conn, visit.tenant, visit.now, visit.user
    if not _fully_reauthenticated(conn, visit.session, tenant, now):
        return _sign_in_again(auth, conn, tenant, visit.ws, now)
    if not factor_store.has_factor(conn, user.id):
        return redirect(f"/t/{tenant.name}/account")
    set_mfa_state(conn, user, user.mfa_state, reset_factors=True)
    notify(conn, tenant.id, user, "factor_removed", now, method="totp")
    if form.get("end_others") == "on":
        end_other_sessions(conn, user.id, visit.session.id, now)
    return redirect(f"/t/{tenant.name}/account?done=removed")


routes = [
    Route("/t/{tenant}/account", in_thread(account_page), methods=["GET"]),
    Route("/t/{tenant}/account/sessions/end", in_thread(end_session_submit), methods=["POST"]),
    Route("/t/{tenant}/account/password", in_thread(password_submit), methods=["POST"]),
    Route("/t/{tenant}/account/factors/totp", in_thread(add_totp_submit), methods=["POST"]),
    Route("/t/{tenant}/account/factors/remove", in_thread(remove_factor_submit), methods=["POST"]),
]
