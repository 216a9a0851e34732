"""Command lines in PowerShell form, bound to a command's parameters."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.cli.client_side.services.params import param_of
from bastion.cli.client_side.shell.pwsh import Bound, Name, Word, bind, parse, tokenize
from bastion.client.errors import UsageError

PARAMS = [
    param_of("identity", {"anyOf": [{"type": "string"}, {"type": "null"}]}, required=False),
    param_of("litigation_hold", {"type": "boolean"}, required=False),
    param_of("inactive", {"anyOf": [{"type": "boolean"}, {"type": "null"}]}, required=False),
    param_of("type", {"enum": ["user", "shared"], "type": "string"}, required=False),
    param_of("aliases", {"type": "array", "items": {"type": "string"}}, required=False),
    param_of("quota_mb", {"type": "integer", "maximum": 10}, required=False),
    param_of("forwarding_address", {"type": "string"}, required=False),
    param_of("forwarding_enabled", {"type": "boolean"}, required=False),
]


def run(line: str, *, lists: bool = True) -> Bound:
    parsed = parse(line)
    return bind(parsed.command, PARAMS, parsed.tokens, lists=lists)


def params(line: str) -> dict[str, Any]:
    return run(line).params


def test_tokens() -> None:
    assert tokenize("Get-X -A 'it''s' -B:$false \"a`\"b\" x,y @('p, q', r)") == [
        Word("Get-X"),
        Name("A"),
        Word("it's", quoted=True),
        Name("B", Word("$false")),
        Word('a"b', quoted=True),
        Word(["x", "y"], quoted=True),
        Word(["p, q", "r"], quoted=True),
    ]
    assert tokenize("Get-X -5 # a comment") == [Word("Get-X"), Word("-5")]


def test_names_switches_arrays_and_the_identity_position() -> None:
    assert params("Get-Mailbox -Identity alice") == {"identity": "alice"}
    assert params("get-mailbox -identity alice") == {"identity": "alice"}  # any case
    assert params("Get-Mailbox alice") == {"identity": "alice"}  # position 0
    assert params("Get-Mailbox -LitigationHold") == {"litigation_hold": True}
    assert params("Get-Mailbox -LitigationHold:$false") == {"litigation_hold": False}
    assert params("Get-Mailbox -Inactive $false alice") == {"inactive": False, "identity": "alice"}
    assert params("Get-Mailbox -Inactive alice") == {"inactive": True, "identity": "alice"}
    assert params("Get-Mailbox -Type SHARED") == {"type": "shared"}
    assert params("Set-Mailbox -Aliases @('a','b')") == {"aliases": ["a", "b"]}
    assert params("Set-Mailbox -Aliases a,b") == {"aliases": ["a", "b"]}
    assert params("Set-Mailbox -Aliases 'a','b'") == {"aliases": ["a", "b"]}
    assert params("Set-Mailbox -Aliases one") == {"aliases": ["one"]}
    assert params("Set-Mailbox -Identity $null") == {"identity": None}
    assert params("Set-Mailbox -Identity '$null'") == {"identity": "$null"}  # quoted: text
    assert params("Set-Mailbox -Quota 7") == {"quota_mb": 7}  # an unambiguous prefix
    assert params("Set-Mailbox -quota_mb 7 -litigation-hold") == {
        "quota_mb": 7,
        "litigation_hold": True,
    }


def test_result_size_and_cursor_of_listings() -> None:
    assert run("Get-Mailbox -ResultSize 10").result_size == 10
    assert run("Get-Mailbox -ResultSize Unlimited").result_size == "unlimited"
    assert run("Get-Mailbox -Cursor abc").cursor == "abc"
    with pytest.raises(UsageError, match="no parameter -ResultSize"):
        run("Get-MailboxStatistics -ResultSize 10", lists=False)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Get-Mailbox -Nope 1", "has no parameter -Nope"),
        ("Get-Mailbox -Forwarding x", "has no parameter -Forwarding"),  # ambiguous prefix
        ("Get-Mailbox -Identity", "-Identity needs a value"),
        ("Get-Mailbox -Type castle", "not one of: user, shared"),
        ("Get-Mailbox -QuotaMb 11", "more than 10"),
        ("Get-Mailbox -QuotaMb many", "not a whole number"),
        ("Get-Mailbox -LitigationHold:maybe", "not true or false"),
        ("Get-Mailbox -ForwardingAddress $null", "cannot be $null"),
        ("Get-Mailbox -Identity a,b", "takes one value"),
        ("Get-Mailbox alice bob", "a value without a parameter name"),
        ("Get-Mailbox -ResultSize 0", "at least 1"),
        ("Get-Mailbox -ResultSize lots", "a number or Unlimited"),
        ("Get-Mailbox -Identity 'open", "not closed"),
        ("Get-Mailbox -Aliases @('a'", "not closed"),
        ("-Identity x", "starts with the command's name"),
    ],
)
def test_mistakes_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(line)
    assert message in str(caught.value)
