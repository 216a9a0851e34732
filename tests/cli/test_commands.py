"""Parameters typed from a catalog's JSON Schema, as options of a command's parser."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.cli.client_side.services.arguments import (
    command_parser,
    missing,
    service_help,
    values_of,
)
from bastion.cli.client_side.services.params import (
    Param,
    first_sentence,
    param_of,
    params_of,
    parse_bool,
)
from bastion.client.catalog import Catalog, CommandInfo
from bastion.client.errors import UsageError

NULLABLE_TEXT: dict[str, Any] = {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "null"}]}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "identity": {**NULLABLE_TEXT, "default": None, "description": "Only this one."},
        "kind": {"enum": ["user", "shared", "room"], "type": "string", "default": "user"},
        "quota_mb": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
        "enabled": {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None},
        "hold": {"type": "boolean", "default": False},
        "aliases": {"type": "array", "items": {"type": "string"}, "default": []},
        "rights": {"type": "array", "items": {"enum": ["FullAccess", "SendAs"]}},
        "since": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
        "policy": {**NULLABLE_TEXT, "description": "null takes it away."},
        "output": {"type": "string", "default": "x"},
    },
    "required": ["policy"],
}


def info(*, lists: bool = True, schema: dict[str, Any] | None = None) -> CommandInfo:
    return CommandInfo(
        service="mail",
        name="Get-Thing",
        help="List things in order. Or one of them.\n\nMore words.",
        parameters=schema if schema is not None else SCHEMA,
        output={"type": "object", "properties": {"id": {"type": "string"}}},
        lists=lists,
        sensitive=False,
    )


def parse(*words: str) -> dict[str, Any]:
    parser, params = command_parser(info(), prog="bastion mail get-thing")
    return values_of(parser.parse_args(list(words)), params)


def test_each_json_type_becomes_a_typed_option() -> None:
    assert parse() == {}
    assert parse("--identity", "alice", "--quota-mb", "7") == {"identity": "alice", "quota_mb": 7}
    assert parse("--kind", "SHARED") == {"kind": "shared"}  # choices in any case
    assert parse("--enabled") == {"enabled": True}
    assert parse("--no-enabled") == {"enabled": False}
    assert parse("--enabled", "false", "--hold", "yes") == {"enabled": False, "hold": True}
    assert parse("--aliases", "a,b", "--aliases", "c") == {"aliases": ["a", "b", "c"]}
    assert parse("--aliases", '["x,y", "z"]') == {"aliases": ["x,y", "z"]}
    assert parse("--rights", "sendas,fullaccess") == {"rights": ["SendAs", "FullAccess"]}
    assert parse("--since", "2024-05-01T09:30:00Z") == {"since": "2024-05-01T09:30:00Z"}
    # null, where null means something: a required nullable parameter
    assert parse("--no-policy") == {"policy": None}
    # a parameter named like one of the CLI's own options
    assert parse("--param-output", "y") == {"output": "y"}


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--quota-mb", "many"], "not a whole number"),
        (["--quota-mb", "0"], "less than 1"),
        (["--quota-mb", "101"], "more than 100"),
        (["--kind", "castle"], "not one of: user, shared, room"),
        (["--enabled", "maybe"], "not true or false"),
        (["--no-enabled", "true"], "takes no value"),
        (["--identity", "much-too-long"], "longer than 8"),
        (["--since", "yesterday"], "ISO 8601"),
        (["--rights", "Read"], "not one of: FullAccess, SendAs"),
        (["--no-identity"], "unrecognized arguments"),  # null means nothing more there
        (["--ident", "x"], "unrecognized arguments"),  # no abbreviations: catalogs grow
    ],
)
def test_values_are_checked_before_anything_is_sent(words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(*words)
    assert message in str(caught.value) and caught.value.exit_code == 2
    assert "bastion mail get-thing --help" in str(caught.value)


def test_required_parameters_and_listing_options() -> None:
    parser, params = command_parser(info(), prog="p")
    args = parser.parse_args(["--page-size", "10", "--all", "--cursor", "c", "-o", "csv"])
    assert [p.name for p in missing(params, values_of(args, params))] == ["policy"]
    assert (args.page_size, args.all, args.cursor, args.output) == (10, True, "c", "csv")
    with pytest.raises(UsageError):
        parser.parse_args(["--page-size", "1001"])
    plain, _ = command_parser(info(lists=False), prog="p")
    with pytest.raises(UsageError):
        plain.parse_args(["--all"])  # only listings page


def test_help_shows_types_allowed_values_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    parser, _ = command_parser(info(), prog="bastion mail get-thing")
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--kind {user,shared,room}" in text and "default: user" in text
    assert "--quota-mb N" in text and "integer, 1 to 100; default: 50" in text
    assert "--enabled [true|false], --no-enabled" in text
    assert "list of string, comma-separated or repeated" in text
    assert "--no-policy sends null" in text and "required" in text
    assert "List things in order. Or one of them." in text and "More words." in text


def test_service_help_lists_commands_with_one_line() -> None:
    catalog = Catalog(service="mail", commands={"Get-Thing": info()}, version="1")
    text = service_help(catalog, prog="bastion mail", where="http://127.0.0.1:1/t/x")
    assert "get-thing" in text and "List things in order." in text
    assert "Or one of them" not in text


def test_schema_helpers() -> None:
    assert first_sentence("One. Two.\nThree") == "One."
    assert parse_bool("$True") is True and parse_bool("off") is False
    p: Param = param_of("x", {"type": ["integer", "null"]}, required=False)
    assert p.kind == "integer" and p.nullable
    assert [q.name for q in params_of(info(schema={"properties": {"cursor": {}}}))] == []
    assert p.pwsh == "X" and param_of("scope_group", {}, required=True).pwsh == "ScopeGroup"
