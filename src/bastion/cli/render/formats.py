"""Results on stdout: table, JSON, JSON lines, CSV or YAML, written as they arrive.

A :class:`Writer` takes a listing page by page (:meth:`Writer.page`) or a whole result
(:meth:`Writer.value`), and :meth:`Writer.close` finishes the document. Every page is one
``write`` and one ``flush``, so what is on stdout is always whole pages, and the JSON
written so far becomes a valid document as soon as :meth:`close` adds the closing bracket:
a listing interrupted part-way still leaves a JSON array behind.

Text from the server is shown, never obeyed: control characters are escaped in tables, and
JSON escapes them itself (C1 controls included), so a display name cannot move the cursor or
change the terminal's title.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from bastion.client.errors import UsageError

_C1 = re.compile("[\x80-\x9f]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
MAX_COLUMN = 48
GAP = "  "


def safe_text(value: str) -> str:
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def to_json(value: Any, *, indent: int | None = 2) -> str:
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(value, indent=indent, ensure_ascii=False, separators=separators)
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def cell(value: Any) -> str:
    """One value as table text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return safe_text(to_json(value, indent=None))
    return safe_text(str(value))


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return to_json(value, indent=None)
    return str(value)


# -- columns ---------------------------------------------------------------------------


def schema_columns(schema: dict[str, Any] | None) -> list[str] | None:
    """The property names of an output schema (of its items, for a list)."""
    if not schema:
        return None
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        schema = schema["items"]
    properties = schema.get("properties")
    return list(properties) if isinstance(properties, dict) else None


def scalar_columns(schema: dict[str, Any] | None) -> list[str] | None:
    """Columns a table shows by default: the schema's properties that are not objects, ids
    last (they are long and say little to a person)."""
    if not schema:
        return None
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        schema = schema["items"]
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return None
    shown = []
    for name, prop in properties.items():
        kinds = {o.get("type") for o in (prop.get("anyOf") or [prop]) if isinstance(o, dict)}
        if "object" not in kinds:
            shown.append(name)
    ids = [n for n in shown if n == "id" or n.endswith("Id")]
    return [n for n in shown if n not in ids] + ids


def resolve_properties(patterns: Sequence[str], known: Sequence[str]) -> list[str]:
    """Property names for ``--property`` patterns: any case, ``*`` wildcards; in the order
    given. A name matching nothing known is an error."""
    chosen: list[str] = []
    lowered = {k.lower(): k for k in known}
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matched = [k for k in known if fnmatch.fnmatch(k.lower(), pattern.lower())]
        else:
            found = lowered.get(pattern.lower())
            matched = [found] if found else []
        if not matched:
            raise UsageError(
                f"there is no property '{pattern}'.",
                hint=f"Properties: {', '.join(known)}.",
            )
        chosen.extend(m for m in matched if m not in chosen)
    return chosen


def pick(value: Any, names: Sequence[str]) -> Any:
    """Only ``names`` of an object (or of each object of a list)."""
    if isinstance(value, dict):
        return {n: value.get(n) for n in names}
    if isinstance(value, list):
        return [pick(v, names) for v in value]
    return value


def query(expression: str, value: Any) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(expression, value)
    except JMESPathError as exc:
        message = " ".join(str(exc).split())
        raise UsageError(
            f"--query '{expression}' is not a JMESPath expression: {message}.",
            hint="See https://jmespath.org for the syntax.",
        ) from None


# -- writers ---------------------------------------------------------------------------


class Writer:
    """Writes results in one format; see the module's documentation."""

    def __init__(
        self,
        fmt: str,
        *,
        columns: Sequence[str] | None = None,
        stream: TextIO | None = None,
        width: int | None = None,
    ) -> None:
        self.format = fmt
        #: the columns of a table or CSV (None: from the first object)
        self.columns: list[str] | None = list(columns) if columns else None
        self._stream = stream
        self._width = width
        self.written = 0
        self._started = False
        self._widths: list[int] | None = None
        self._dropped: list[str] = []

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def _emit(self, text: str) -> None:
        if text:
            self.stream.write(text)
        self.stream.flush()

    # -- a listing, page by page ------------------------------------------------------

    def page(self, items: list[Any]) -> None:
        """Write one page of a listing."""
        text = getattr(self, f"_page_{self.format}")(items)
        self._started = True
        self.written += len(items)
        self._emit(text)

    def close(self) -> None:
        """Finish the document (a listing's closing bracket)."""
        if self.format == "json":
            self._emit("\n]\n" if self.written else "[]\n")
        elif self.format == "yaml" and not self.written:
            self._emit("[]\n")
        self._note()

    def _note(self) -> None:
        if self._dropped:
            print(
                f"({len(self._dropped)} more columns: {', '.join(self._dropped)}; --property "
                "picks columns, --output json shows every property)",
                file=sys.stderr,
            )
            self._dropped = []

    def _page_json(self, items: list[Any]) -> str:
        if not items:
            return ""
        body = ",\n".join("  " + to_json(item).replace("\n", "\n  ") for item in items)
        return ("[\n" if not self.written else ",\n") + body

    def _page_jsonl(self, items: list[Any]) -> str:
        return "".join(to_json(item, indent=None) + "\n" for item in items)

    def _page_yaml(self, items: list[Any]) -> str:
        return yaml_dump(items) if items else ""

    def _page_csv(self, items: list[Any]) -> str:
        import csv

        rows = [i if isinstance(i, dict) else {"value": i} for i in items]
        if self.columns is None:
            if not rows:
                return ""
            self.columns = list(rows[0])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if not self._started:
            writer.writerow(self.columns)
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in self.columns])
        return out.getvalue()

    def _page_table(self, items: list[Any]) -> str:
        if items and not all(isinstance(i, dict) for i in items):
            return "".join(cell(i) + "\n" for i in items)
        rows: list[dict[str, Any]] = items
        if self.columns is None:
            if not rows:
                return ""
            self.columns = list(rows[0])
        if self._widths is None:
            self._fit(rows)
        assert self._widths is not None
        lines = []
        if not self._started:
            lines.append(self._line([c for c in self.columns]))
            lines.append(self._line(["-" * w for w in self._widths]))
        for row in rows:
            lines.append(self._line([cell(row.get(c)) for c in self.columns]))
        return "".join(line + "\n" for line in lines)

    def _fit(self, rows: list[dict[str, Any]]) -> None:
        assert self.columns is not None
        widths = [
            min(MAX_COLUMN, max([len(c)] + [len(cell(r.get(c))) for r in rows]))
            for c in self.columns
        ]
        limit = self._width
        if limit is None and _isatty(self.stream):
            limit = shutil.get_terminal_size().columns
        if limit:
            while len(widths) > 1 and sum(widths) + len(GAP) * (len(widths) - 1) > limit:
                widths.pop()
                self._dropped.insert(0, self.columns.pop())
        self._widths = widths

    def _line(self, cells: list[str]) -> str:
        assert self._widths is not None
        out = []
        for text, width in zip(cells, self._widths, strict=False):
            if len(text) > width:
                text = text[: max(1, width - 1)] + "…"
            out.append(text.ljust(width))
        return GAP.join(out).rstrip()

    # -- a whole result ----------------------------------------------------------------

    def value(self, result: Any) -> None:
        """Write a result that is not a listing."""
        if self.format == "json":
            self._emit(to_json(result) + "\n")
        elif self.format == "yaml":
            self._emit(yaml_dump(result))
        elif self.format == "jsonl":
            items = result if isinstance(result, list) else [result]
            self._emit(self._page_jsonl(items))
        elif isinstance(result, list):
            self.page(result)
        elif isinstance(result, dict):
            if self.format == "csv":
                self.page([result])
            else:
                self._emit(details(result, self.columns))
        elif result is not None:
            self._emit(cell(result) + "\n" if self.format == "table" else csv_cell(result) + "\n")
        self._note()


def details(obj: dict[str, Any], names: Iterable[str] | None = None) -> str:
    """One object as ``name : value`` lines (PowerShell's Format-List)."""
    keys = list(names) if names else list(obj)
    if not keys:
        return ""
    width = max(len(k) for k in keys)
    return "".join(f"{k.ljust(width)} : {cell(obj.get(k))}".rstrip() + "\n" for k in keys)


def yaml_dump(value: Any) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(value, Dumper=dumper, sort_keys=False, allow_unicode=True)
    return text


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
