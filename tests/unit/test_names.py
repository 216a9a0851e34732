"""The naming rules (RFC 8264, RFC 8265 UsernameCaseMapped, RFC 8266, UTS #39 mixed
scripts) and the password rules' lists and context words (A1), without a server."""

from __future__ import annotations

import pytest

from bastion.authority.passwords import (
    PasswordHasher,
    breached_passwords,
    common_passwords,
    context_words,
    normalize,
    password_problem,
)
from bastion.core.config import Argon2Params
from bastion.directory import names

TENANT = "contoso"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("alice@contoso", "alice@contoso"),
        ("Alice.Smith@Contoso", "alice.smith@contoso"),
        ("\uff21lice@contoso", "alice@contoso"),  # fullwidth A: width-mapped
        ("José.García@contoso", "josé.garcía@contoso"),
        ("σοφία@contoso", "σοφία@contoso"),
        ("田中たなか@contoso", "田中たなか@contoso"),
        ("tanaka田中@contoso", "tanaka田中@contoso"),  # Latin with Han: UTS #39 allows it
        ("o'brien_2-x@contoso", "o'brien_2-x@contoso"),
    ],
)
def test_good_names_pass_in_their_canonical_form(typed: str, stored: str) -> None:
    assert names.check_upn(typed, TENANT) == stored
    assert names.upn_problem(stored, TENANT) is None
    assert stored in names.lookup_forms(typed)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("\u0430dmin@contoso", "mixes Cyrillic and Latin"),
        ("p\u0430yp\u0430l@contoso", "mixes Latin and Cyrillic"),
        ("\u03bfscar@contoso", "mixes Greek and Latin"),
        ("ad\u200bmin@contoso", "U+200B"),
        ("ad\u200dmin@contoso", "U+200D"),
        ("ad\u202emin@contoso", "U+202E"),
        ("ad\u2066min@contoso", "U+2066"),
        ("ad\u00admin@contoso", "U+00AD"),
        ("ad\x00min@contoso", "control character"),
        ("\ufb01le@contoso", "compatibility form"),
        ("a b@contoso", "a space"),
        ("admin@fabrikam", "must be this tenant's name"),
        ("admin@contoso.evil", "must be this tenant's name"),
        ("../../etc/passwd", "needs the form name@"),
        ("../../etc/passwd@contoso", "'/' may not appear"),
        ("a..b@contoso", "'..'"),
        (".a@contoso", "start or end"),
        ("<a>@contoso", "'<>' may not appear"),
        ("a-@contoso", "start or end"),
        ("admin@contoso@contoso", "'@' may not appear"),
        ("@contoso", "needs the form"),
        ("x" * 65 + "@contoso", "more than 64"),
        ("\u05d0\u05d1a@contoso", "right-to-left"),
    ],
)
def test_bad_names_are_refused_with_the_reason(typed: str, reason: str) -> None:
    with pytest.raises(names.BadName) as refused:
        names.check_upn(typed, TENANT)
    assert reason in refused.value.detail
    for invisible in "\u200b\u200d\u202e\u2066\x00":
        assert invisible not in refused.value.detail
    assert names.upn_problem(typed, TENANT) is not None


def test_display_names_are_nicknames() -> None:
    assert names.check_display_name("  Ada   Admin ") == "Ada Admin"
    assert names.check_display_name("Zoë 🚲 Ōta") == "Zoë 🚲 Ōta"
    for bad in ("Ada\u202eAdmin", "Ada\u200bAdmin", "Ada\x07", "", "   "):
        with pytest.raises(names.BadName):
            names.check_display_name(bad)
    assert names.display_name_problem("Ada Admin") is None
    assert names.display_name_problem("Old \u202eName") is not None
    assert names.display_name_problem("two  spaces") is not None


def test_the_password_lists_are_shipped_and_large_enough() -> None:
    """A1: at least the 3,000 most common passwords, and a breached-password set."""
    assert len(common_passwords()) >= 30_000
    assert {"password", "iloveyou", "12345678", "qwertyuiop"} <= common_passwords()
    assert len(breached_passwords()) >= 19_000
    assert "linkedin" in breached_passwords() and "linkedin" not in common_passwords()


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("k3#Vq9!", "at least 8"),
        ("Password", "most common"),
        ("iloveyou ", "most common"),
        ("\uff49\uff4c\uff4f\uff56\uff45\uff59\uff4f\uff55", "most common"),  # fullwidth
        ("LinkedIn", "breached"),
        ("contoso1", "name of this tenant"),
        ("Contoso-2024!", "name of this tenant"),
        ("Bastion123", "name of this tenant"),
        ("ada.admin99", "name of this tenant"),
    ],
)
def test_password_rules_refuse_with_a_reason(password: str, reason: str) -> None:
    context = context_words("contoso", "Contoso Ltd", "ada.admin@contoso", "Ada Admin")
    problem = password_problem(password, context)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "password",
    [
        "k3#Vq9!z",
        "über die Brücke 🚲 gehen wir langsam, dann nach Hause; é ü ñ ø å!",
        "contoso rides a blue bicycle",  # a context word inside a passphrase is fine
        "x" * 1024,
    ],
)
def test_password_rules_accept(password: str) -> None:
    context = context_words("contoso", "Contoso Ltd", "ada.admin@contoso", "Ada Admin")
    assert password_problem(password, context) is None


def test_hashes_are_of_the_nfkc_form_and_old_hashes_of_the_typed_form_still_match() -> None:
    hasher = PasswordHasher(Argon2Params())
    typed = "\uff37ide horse battery"
    assert normalize(typed) == "Wide horse battery"
    stored = hasher.hash(typed)
    assert hasher.check(stored, "Wide horse battery").matched
    assert hasher.check(stored, typed) == hasher.check(stored, "Wide horse battery")
    assert not hasher.check(stored, "wide horse battery").matched
    old = hasher._hasher.hash(typed)  # as stored before normalisation
    match = hasher.check(old, typed)
    assert match.matched and match.rehash
    assert not hasher.check(old, "Wide horse battery").matched


def test_the_demo_and_the_seeded_population_pass_the_rules() -> None:
    from bastion.server import demo_tenant as demo
    from bastion.server import seed

    for spec in demo.DEMO_USERS:
        assert names.check_upn(spec.username, demo.TENANT) == spec.username
        assert names.check_display_name(spec.display_name) == spec.display_name
    for first in seed.FIRST:
        for last in seed.LAST:
            assert names.display_name_problem(f"{first} {last}") is None
    assert names.upn_problem(f"{seed.PREFIX}{1234567:07d}@contoso", "contoso") is None
    # the demo's passwords are generated: "demo-" and 12 random URL-safe characters
    assert password_problem("demo-" + "A" * 12, context_words("contoso", "Contoso")) is None
