"""Small parts of the client, each on its own: names, listings, challenges, token checks."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from typing import Any

import httpx
import pytest

from bastion.client.catalog import CommandInfo, python_name, python_parameter
from bastion.client.errors import (
    ClientError,
    IssuerMismatch,
    ListingIncomplete,
    NetworkError,
    NotFoundError,
    PermissionDenied,
    ServerError,
    SignInRequired,
    StepUpRequired,
    UsageError,
    error_from_problem,
)
from bastion.client.oauth import check_token_response, claims, parse_challenge
from bastion.client.paging import Listing, Page
from bastion.client.prompt import presence
from bastion.client.signin import effective_method
from bastion.client.signin.loopback import Loopback
from bastion.client.signin.pkce import challenge

ISSUER = "http://127.0.0.1:8700/t/contoso"
MAIL = "http://127.0.0.1:8700/api/mail"


def jwt(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256'})}.{part(payload)}.c2ln"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("Get-Mailbox", "get_mailbox"),
        ("Get-UserMfa", "get_user_mfa"),
        ("Search-AuditLog", "search_audit_log"),
        ("Add-RoleGroupMember", "add_role_group_member"),
        ("Get-URLList", "get_url_list"),
        ("Set-Mailbox2", "set_mailbox_2"),
    ],
)
def test_python_names(command: str, expected: str) -> None:
    assert python_name(command) == expected


def test_python_parameters_avoid_keywords() -> None:
    assert python_parameter("from") == "from_" and python_parameter("identity") == "identity"


def test_docstring_from_the_catalog() -> None:
    info = CommandInfo(
        service="mail",
        name="Get-Mailbox",
        help="List mailboxes.",
        parameters={
            "properties": {
                "identity": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Id."}
            },
            "required": [],
        },
        output={},
        lists=True,
        sensitive=False,
    )
    doc = info.docstring()
    assert doc.startswith("List mailboxes.")
    assert "identity (string or null, optional): Id." in doc
    assert "page_size" in doc and "Listing" in doc and "Command: mail Get-Mailbox" in doc


def pages(*chunks: list[int]) -> dict[str, Page]:
    """Pages keyed by the cursor that fetches them; the first has the key ''."""
    found = {}
    for index, chunk in enumerate(chunks):
        following = f"c{index + 1}" if index + 1 < len(chunks) else None
        found["" if index == 0 else f"c{index}"] = Page(items=chunk, next=following)
    return found


def test_a_listing_fetches_pages_as_they_are_consumed() -> None:
    book = pages([1, 2], [3, 4], [5])
    asked: list[str] = []

    def fetch(cursor: str) -> Page:
        asked.append(cursor)
        return book[cursor]

    listing = Listing(book[""], fetch)
    assert next(listing) == 1 and next(listing) == 2 and asked == []
    assert listing.next_cursor == "c1"
    assert next(listing) == 3 and asked == ["c1"]
    assert list(listing) == [4, 5] and listing.complete and listing.count == 5


def test_pages_give_checkpoints() -> None:
    book = pages([1, 2], [3], [4, 5])
    listing = Listing(book[""], book.__getitem__)
    next(listing)
    seen = [(p.items, p.next) for p in listing.pages()]
    assert seen == [([2], "c1"), ([3], "c2"), ([4, 5], None)]
    assert listing.count == 5 and listing.pages_fetched == 3


def test_a_failed_page_says_how_far_it_got_and_resumes() -> None:
    book = pages([1, 2], [3, 4], [5])
    broken = {"c1"}

    def fetch(cursor: str) -> Page:
        if cursor in broken:
            raise NetworkError("the server went away")
        return book[cursor]

    listing = Listing(book[""], fetch)
    got = []
    with pytest.raises(ListingIncomplete) as caught:
        for item in listing:
            got.append(item)
    assert got == [1, 2] and caught.value.count == 2 and caught.value.cursor == "c1"
    assert caught.value.exit_code == 5 and isinstance(caught.value.cause, NetworkError)
    broken.clear()
    rest = Listing(fetch(caught.value.cursor), fetch)
    assert got + list(rest) == [1, 2, 3, 4, 5]


def test_step_up_challenge_is_parsed() -> None:
    found = parse_challenge(
        'Bearer error="insufficient_user_authentication", error_description="Remove-Group '
        'needs a \\"fresh\\" factor", max_age=600, acr_values="urn:bastion:acr:2fa"'
    )
    assert found.error == "insufficient_user_authentication" and found.max_age == 600
    assert found.acr_values == "urn:bastion:acr:2fa"
    assert found.description == 'Remove-Group needs a "fresh" factor'
    assert parse_challenge('Bearer realm="bastion"').error is None
    assert parse_challenge(None).error is None


def test_token_responses_from_another_issuer_are_refused() -> None:
    now = time.time()
    good = {"access_token": jwt({"iss": ISSUER, "aud": MAIL}), "expires_in": 900}
    tokens = check_token_response(good, issuer=ISSUER, resource=MAIL, sent=now)
    assert tokens.audience == MAIL and tokens.expires_at == pytest.approx(now + 900)
    other = {"access_token": jwt({"iss": ISSUER + "x", "aud": MAIL}), "expires_in": 900}
    with pytest.raises(IssuerMismatch):
        check_token_response(other, issuer=ISSUER, resource=MAIL, sent=now)
    bad_id = {**good, "id_token": jwt({"iss": "http://127.0.0.1:9/t/other"})}
    with pytest.raises(IssuerMismatch):
        check_token_response(bad_id, issuer=ISSUER, resource=MAIL, sent=now)
    with pytest.raises(ServerError, match=re.escape(f"for '{MAIL}'")):
        check_token_response(good, issuer=ISSUER, resource=MAIL + "x", sent=now)


def test_claims_of_something_that_is_not_a_jwt() -> None:
    assert claims("opaque") == {} and claims("a.!!!.b") == {}


def test_problem_details_become_typed_errors() -> None:
    body = {"type": "https://bastion.dev/problems/not-found", "detail": "No such mailbox."}
    found = error_from_problem(404, body, "fallback")
    assert isinstance(found, NotFoundError) and found.exit_code == 3
    assert str(found) == "No such mailbox." and found.type and found.type.endswith("not-found")
    usage = error_from_problem(400, {"detail": "bad", "parameter": "identity"}, "x")
    assert isinstance(usage, UsageError) and usage.exit_code == 2
    assert usage.parameter == "identity"
    assert isinstance(error_from_problem(403, None, "denied"), PermissionDenied)
    assert str(error_from_problem(502, None, "bad gateway")) == "bad gateway"
    assert isinstance(error_from_problem(502, None, "x"), ServerError)


def test_exit_codes() -> None:
    assert ClientError("x").exit_code == 1
    assert SignInRequired("x").exit_code == 4 and StepUpRequired("x").exit_code == 4
    assert issubclass(StepUpRequired, SignInRequired)


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)


def test_interactive_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASTION_INTERACTIVE", raising=False)
    monkeypatch.delattr("sys.ps1", raising=False)
    monkeypatch.setitem(sys.modules, "IPython", None)  # type: ignore[arg-type]
    monkeypatch.setattr("sys.stdin", _Stream(False))
    monkeypatch.setattr("sys.stderr", _Stream(False))
    # no terminal, no REPL: nobody, unless told that a person watches
    assert presence(None, prompt_given=False) == "nobody"
    assert presence(True, prompt_given=False) == "watching"
    assert presence(None, prompt_given=True) == "typing"
    monkeypatch.setenv("BASTION_INTERACTIVE", "1")
    assert presence(None, prompt_given=False) == "watching"
    monkeypatch.setenv("BASTION_INTERACTIVE", "0")
    assert presence(None, prompt_given=True) == "nobody"
    assert presence(True, prompt_given=False) == "watching"  # the argument wins
    monkeypatch.delenv("BASTION_INTERACTIVE")
    monkeypatch.setattr("sys.ps1", ">>> ", raising=False)  # a REPL shows the device code
    assert presence(None, prompt_given=False) == "watching"
    monkeypatch.delattr("sys.ps1")
    monkeypatch.setattr("sys.stderr", _Stream(True))  # stderr alone: watch, not type
    assert presence(None, prompt_given=False) == "watching"
    monkeypatch.setattr("sys.stdin", _Stream(True))
    assert presence(None, prompt_given=False) == "typing"
    assert presence(False, prompt_given=False) == "nobody"


def test_auto_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert effective_method("auto", can_type=True) == "device"
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert effective_method("auto", can_type=True) == "browser"
    assert effective_method("terminal", can_type=False) == "device"
    assert effective_method("terminal", can_type=True) == "terminal"


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_loopback_listener_waits_for_its_own_state() -> None:
    with Loopback("the-state") as listener:
        base = listener.redirect_uri
        assert base.startswith("http://127.0.0.1:") and base.endswith("/callback")
        stray = httpx.get(base + "?code=x&state=other")
        assert stray.status_code == 404 and listener.wait(0.01) is None
        assert httpx.get(base.replace("/callback", "/") + "?state=the-state").status_code == 404
        done = httpx.get(base + "?code=abc&state=the-state&iss=x")
        assert done.status_code == 200 and "signed in" in done.text
        assert listener.wait(1) == {"code": "abc", "state": "the-state", "iss": "x"}
