"""The rules for user principal names and display names: names people can't be fooled by.

A user principal name is ``local@tenant``. The local part is a PRECIS username (RFC 8264,
RFC 8265 section 3.3, UsernameCaseMapped, through ``precis-i18n``): letters and digits of
any script plus printable ASCII, width-mapped, NFC-normalised and lower-cased; controls,
spaces, invisible and formatting characters (a zero-width space, a right-to-left override)
and compatibility forms are refused. On top of that:

- the letters of the local part come from one script, or from one of the combinations
  Unicode's "highly restrictive" level allows (UTS #39 section 5.2: Latin with Han and
  Japanese kana, with Han and Bopomofo, or with Han and Hangul), so ``admin`` written with
  a Cyrillic ``a`` (U+0430) cannot pass for ``admin``; scripts come from the Unicode
  Script_Extensions property (``fontTools.unicodedata``);
- its ASCII punctuation is the set Entra ID allows in user names (``' . - _ ! # ^ ~``),
  never at the start or the end, and no two dots in a row: no ``/``, ``..`` or ``<``;
- the part after ``@`` is the tenant's own name (a tenant's other domains come later).

A display name is a PRECIS nickname (RFC 8266, NicknameCasePreserved): spaces trimmed and
collapsed, NFKC, and no controls, bidi overrides or invisible characters.

Names stored before these rules keep working; :func:`upn_problem` and
:func:`display_name_problem` say what is wrong with them, for the report.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import precis_i18n
from fontTools import unicodedata as script_data

from bastion.core.errors import UsageError

MAX_LOCAL_LENGTH = 64
MAX_UPN_LENGTH = 320
MAX_DISPLAY_NAME_LENGTH = 256
UPN_PUNCTUATION = "'.-_!#^~"

# Scripts that count as "any script": punctuation, digits, combining marks.
_ANY_SCRIPT = {"Zyyy", "Zinh", "Zzzz"}
# UTS #39 section 5.2, "Highly Restrictive": the script combinations of Japanese, Chinese
# and Korean writing, each with Latin.
_ALLOWED_MIXES = (
    frozenset({"Latn", "Hani", "Hira", "Kana"}),
    frozenset({"Latn", "Hani", "Bopo"}),
    frozenset({"Latn", "Hani", "Hang"}),
)
# What precis-i18n's refusal reasons mean, in words a person can act on.
_REASONS = {
    "spaces": "a space",
    "controls": "a control character",
    "precis_ignorable_properties": "an invisible or formatting character",
    "has_compat": "a compatibility form of another character",
    "unassigned": "a character that Unicode has not assigned",
    "other": "a symbol or punctuation mark that names may not hold",
    "old_hangul_jamo": "an archaic Hangul letter",
    "bidi_rule": "a mix of left-to-right and right-to-left text",
    "context": "a joining character out of place",
    "empty": "nothing",
}
_PLAIN_UPN = re.compile(r"^[a-z0-9](?:[a-z0-9_'!#^~.-]{0,62}[a-z0-9])?@[a-z0-9-]+$")
_PLAIN_DISPLAY = re.compile(r"^[!-~](?:[ ]?[!-~])*$")


class BadName(UsageError):
    """A name that the rules refuse, with the reason."""


@cache
def _profile(name: str) -> precis_i18n.profile.Profile:
    return precis_i18n.get_profile(name)


def visible(value: str) -> str:
    """``value`` with every character that does not show itself (controls, format and
    separator characters) written as ``\\uXXXX``, so that a message quoting a name cannot
    itself reorder or hide text."""
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in value
    )


def _precis(profile: str, value: str, what: str) -> str:
    try:
        return str(_profile(profile).enforce(value))
    except UnicodeEncodeError as exc:
        kind = exc.reason.split("/", 1)[-1]
        reason = _REASONS.get(kind, "a character that names may not hold")
        where = ""
        if exc.start < len(value) and kind not in ("empty", "bidi_rule"):
            where = f" (U+{ord(value[exc.start]):04X} at position {exc.start + 1})"
        raise BadName(f"{what} holds {reason}{where}.") from None


def _scripts(char: str) -> set[str]:
    return set(script_data.script_extension(char))


def _mixed_scripts(local: str) -> list[str] | None:
    """The scripts of ``local`` when they are a mix UTS #39's highly restrictive level
    refuses; None when one script (or an allowed combination) covers every letter."""
    sets = [s for s in (_scripts(c) for c in local) if not s & _ANY_SCRIPT]
    if not sets:
        return None
    common = set.intersection(*sets)
    if common or any(all(s & mix for s in sets) for mix in _ALLOWED_MIXES):
        return None
    seen: list[str] = []
    for s in sets:
        name = script_data.script_name(sorted(s)[0])
        if name not in seen:
            seen.append(name)
    return seen


def check_upn(value: str, tenant_name: str) -> str:
    """The canonical form of user principal name ``value`` for tenant ``tenant_name``, or a
    :class:`BadName` saying why it cannot be one."""
    shown = visible(value)

    def bad(message: str) -> BadName:
        return BadName(
            message,
            hint=f"Use a name like alice@{tenant_name}: letters and digits of one script "
            "before '@'.",
            parameter="user_principal_name",
        )

    if len(value) > MAX_UPN_LENGTH:
        raise bad(f"a user name has at most {MAX_UPN_LENGTH} characters.")
    local, at, domain = value.strip().rpartition("@")
    if not at or not local:
        raise bad(f"'{shown}' is not a user name: it needs the form name@{tenant_name}.")
    try:
        local = _precis("UsernameCaseMapped", local, "the part before '@'")
        domain = _precis("UsernameCaseMapped", domain, "the part after '@'")
    except BadName as exc:
        raise bad(f"'{shown}' is not a valid user name: {exc.detail}") from None
    if domain != tenant_name:
        raise bad(
            f"'{shown}' is not a valid user name: the part after '@' must be this tenant's "
            f"name, '{tenant_name}'."
        )
    problem = _local_problem(local)
    if problem:
        raise bad(f"'{shown}' is not a valid user name: {problem}")
    return f"{local}@{domain}"


def _local_problem(local: str) -> str | None:
    if len(local) > MAX_LOCAL_LENGTH:
        return f"the part before '@' has more than {MAX_LOCAL_LENGTH} characters."
    bad = sorted({c for c in local if c.isascii() and not c.isalnum() and c not in UPN_PUNCTUATION})
    if bad:
        return (
            f"'{''.join(bad)}' may not appear before '@' (punctuation allowed: "
            f"{' '.join(UPN_PUNCTUATION)})."
        )
    if local[0] in UPN_PUNCTUATION or local[-1] in UPN_PUNCTUATION or ".." in local:
        return "the part before '@' may not start or end with punctuation or hold '..'."
    mixed = _mixed_scripts(local)
    if mixed:
        return (
            f"the part before '@' mixes {' and '.join(mixed)} letters, so it could pass for "
            "another name."
        )
    return None


def upn_problem(value: str, tenant_name: str) -> str | None:
    """Why a stored user principal name fails today's rules, or None when it passes."""
    if _PLAIN_UPN.match(value) and ".." not in value and value.endswith(f"@{tenant_name}"):
        return None  # the common case, without the cost of PRECIS
    try:
        canonical = check_upn(value, tenant_name)
    except BadName as exc:
        return exc.detail
    if canonical != value:
        return f"it is not in its canonical form ('{visible(canonical)}')."
    return None


def lookup_forms(value: str) -> list[str]:
    """The stored forms a typed user name may have: as typed in lower case (names stored
    before these rules), and its canonical form when it has one."""
    typed = value.strip().lower()
    forms = [typed]
    local, at, domain = typed.rpartition("@")
    if at and local and len(value) <= MAX_UPN_LENGTH:
        try:
            canonical = (
                f"{_profile('UsernameCaseMapped').enforce(local)}@"
                f"{_profile('UsernameCaseMapped').enforce(domain)}"
            )
        except UnicodeEncodeError:
            return forms
        if canonical != typed:
            forms.append(canonical)
    return forms


def check_display_name(value: str) -> str:
    """The enforced form of display name ``value`` (RFC 8266), or a :class:`BadName`."""
    if len(value) > MAX_DISPLAY_NAME_LENGTH:
        raise BadName(
            f"a display name has at most {MAX_DISPLAY_NAME_LENGTH} characters.",
            parameter="display_name",
        )
    try:
        return _precis("NicknameCasePreserved", value, "the display name")
    except BadName as exc:
        raise BadName(
            f"'{visible(value)}' is not a valid display name: {exc.detail}",
            hint="Use visible text: letters, digits, spaces and punctuation.",
            parameter="display_name",
        ) from None


def display_name_problem(value: str) -> str | None:
    """Why a stored display name fails today's rules, or None when it passes."""
    if _PLAIN_DISPLAY.match(value):
        return None
    try:
        enforced = check_display_name(value)
    except BadName as exc:
        return exc.detail
    if enforced != value:
        return f"it is not in its canonical form ('{visible(enforced)}')."
    return None
