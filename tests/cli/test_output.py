"""Results written page by page in each format; a JSON array valid at every stop."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import yaml

from bastion.cli.render.formats import (
    Writer,
    pick,
    query,
    resolve_properties,
    scalar_columns,
    schema_columns,
)
from bastion.client.errors import UsageError

PAGES: list[list[dict[str, Any]]] = [
    [{"id": "1", "name": "Ann", "tags": ["a", "b"], "on": True, "quota": None}],
    [{"id": "2", "name": "Bo", "tags": [], "on": False, "quota": 5}],
]


def written(fmt: str, pages: list[list[Any]] = PAGES, **kw: Any) -> str:
    out = io.StringIO()
    writer = Writer(fmt, stream=out, **kw)
    for page in pages:
        writer.page(page)
    writer.close()
    return out.getvalue()


def test_each_format_streams_pages() -> None:
    items = [i for page in PAGES for i in page]
    assert json.loads(written("json")) == items
    assert [json.loads(line) for line in written("jsonl").splitlines()] == items
    assert yaml.safe_load(written("yaml")) == items
    rows = list(csv.DictReader(io.StringIO(written("csv"))))
    assert rows[0] == {"id": "1", "name": "Ann", "tags": '["a","b"]', "on": "true", "quota": ""}
    assert len(rows) == 2  # the header once
    table = written("table").splitlines()
    assert table[0].split() == ["id", "name", "tags", "on", "quota"]
    assert table[2].split() == ["1", "Ann", "a,", "b", "true"]
    assert len(table) == 4


def test_an_empty_listing_is_still_a_document() -> None:
    assert json.loads(written("json", [[]])) == []
    assert json.loads(written("json", [])) == []
    assert yaml.safe_load(written("yaml", [[]])) == []
    assert written("jsonl", [[]]) == ""


def test_a_stopped_json_listing_is_valid_when_closed() -> None:
    out = io.StringIO()
    writer = Writer("json", stream=out)
    writer.page(PAGES[0])
    prefix = out.getvalue()
    writer.close()  # what an interruption does
    assert json.loads(out.getvalue()) == PAGES[0] and out.getvalue().startswith(prefix)


def test_a_table_fits_the_width_and_says_what_it_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = written("table", width=20)
    assert all(len(line) <= 20 for line in text.splitlines())
    assert "more columns" in capsys.readouterr().err
    wide = written("table", [[{"a": "x" * 100}]])
    assert "…" in wide and max(len(line) for line in wide.splitlines()) == 48


def test_text_from_the_server_cannot_drive_the_terminal() -> None:
    evil = [[{"name": "\x1b]0;owned\x07\x9b31m"}]]
    for fmt in ("table", "json", "jsonl"):
        out = written(fmt, evil)
        assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out, fmt
    assert json.loads(written("json", evil))[0]["name"] == evil[0][0]["name"]


def test_single_results() -> None:
    out = io.StringIO()
    Writer("table", stream=out).value({"state": "enforced", "methods": ["totp"]})
    assert out.getvalue() == "state   : enforced\nmethods : totp\n"
    out = io.StringIO()
    Writer("json", stream=out).value({"a": 1})
    assert json.loads(out.getvalue()) == {"a": 1}
    out = io.StringIO()
    Writer("table", stream=out).value(None)
    assert out.getvalue() == ""


def test_properties_columns_and_queries() -> None:
    known = ["id", "displayName", "primaryAddress", "userId"]
    assert resolve_properties(["DISPLAYNAME", "prim*"], known) == ["displayName", "primaryAddress"]
    with pytest.raises(UsageError, match="no property 'x'"):
        resolve_properties(["x"], known)
    assert pick([{"a": 1, "b": 2}], ["b"]) == [{"b": 2}]
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "meta": {"type": "object"},
            "ownerId": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    assert schema_columns(schema) == ["id", "name", "meta", "ownerId"]
    assert scalar_columns(schema) == ["name", "id", "ownerId"]  # ids last, objects out
    assert scalar_columns({"type": "array", "items": schema}) == ["name", "id", "ownerId"]
    assert query("[?on].name", PAGES[0]) == ["Ann"]
    with pytest.raises(UsageError, match="JMESPath"):
        query("[?", [])
