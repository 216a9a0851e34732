"""Command lines in PowerShell form, as admins type them: ``Get-Mailbox -Identity alice
-ResultSize 10``.

What is understood (a small, well-defined part of PowerShell's syntax, no scripting):

- ``-Name value``: a parameter; the name in any case, PascalCase for snake_case
  (``-LitigationHold`` is ``litigation_hold``), or any unambiguous prefix;
- ``-Name:value``; switches ``-Inactive`` and ``-Inactive:$false``; a boolean parameter also
  takes a following ``$true``/``$false``;
- ``'single'`` (``''`` is a quote) and ``"double"`` (backtick escapes) quoted strings;
- arrays as ``@('a','b')``, ``'a','b'`` or ``a,b``; ``$null``, ``$true``, ``$false``;
- a first value without a name is ``-Identity`` (as PowerShell's position 0);
- ``-ResultSize N`` (or ``Unlimited``) limits a listing, ``-Cursor`` continues one.

Values are then converted by the parameter's type from the catalog (``services/params.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bastion.cli.client_side.services.params import Param, find_param, normalize
from bastion.client.errors import UsageError

NULL = "$null"


@dataclass(frozen=True)
class Word:
    """A value: text, or a list of texts for an array; ``quoted`` when it cannot be a
    parameter name or a ``$`` constant."""

    value: str | list[str]
    quoted: bool = False


@dataclass(frozen=True)
class Name:
    """``-Name``, with ``-Name:value``'s value."""

    name: str
    attached: Word | None = None


@dataclass
class Line:
    command: str
    tokens: list[Word | Name] = field(default_factory=list)


def tokenize(line: str) -> list[Word | Name]:
    tokens: list[Word | Name] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#":
            break
        if ch == "-" and i + 1 < n and (line[i + 1].isalpha() or line[i + 1] == "-"):
            j = i + 1
            while j < n and not line[j].isspace() and line[j] != ":":
                j += 1
            name = line[i + 1 : j].lstrip("-")
            if j < n and line[j] == ":":
                word, j = _value(line, j + 1)
                tokens.append(Name(name, word))
            else:
                tokens.append(Name(name))
            i = j
            continue
        word, i = _value(line, i)
        tokens.append(word)
    return tokens


def _value(line: str, i: int) -> tuple[Word, int]:
    """A value from ``i``: a scalar, ``@(...)``, or items joined by commas."""
    if line.startswith("@(", i):
        items: list[str] = []
        j = i + 2
        while True:
            if j >= len(line):
                raise UsageError("an array @( is not closed.", hint="End it with ).")
            if line[j].isspace() or line[j] == ",":
                j += 1
            elif line[j] == ")":
                return Word(items, quoted=True), j + 1
            else:
                text, j, _quoted = _scalar(line, j, stop=",)")
                items.append(text)
    text, j, quoted = _scalar(line, i, stop=",")
    if j < len(line) and line[j] == ",":
        items = [text]
        while j < len(line) and line[j] == ",":
            j += 1
            while j < len(line) and line[j].isspace():
                j += 1
            more, j, _ = _scalar(line, j, stop=",")
            items.append(more)
        return Word(items, quoted=True), j
    return Word(text, quoted=quoted), j


def _scalar(line: str, i: int, *, stop: str) -> tuple[str, int, bool]:
    n = len(line)
    if i < n and line[i] == "'":
        out = []
        j = i + 1
        while True:
            if j >= n:
                raise UsageError("a quoted string is not closed.", hint="End it with '.")
            if line[j] == "'":
                if j + 1 < n and line[j + 1] == "'":
                    out.append("'")
                    j += 2
                    continue
                return "".join(out), j + 1, True
            out.append(line[j])
            j += 1
    if i < n and line[i] == '"':
        out = []
        j = i + 1
        while True:
            if j >= n:
                raise UsageError("a quoted string is not closed.", hint='End it with ".')
            if line[j] == "`" and j + 1 < n:
                out.append({"n": "\n", "t": "\t"}.get(line[j + 1], line[j + 1]))
                j += 2
                continue
            if line[j] == '"':
                return "".join(out), j + 1, True
            out.append(line[j])
            j += 1
    j = i
    while j < n and not line[j].isspace() and line[j] not in stop:
        j += 1
    return line[i:j], j, False


def parse(line: str) -> Line:
    tokens = tokenize(line)
    if not tokens or not isinstance(tokens[0], Word) or not isinstance(tokens[0].value, str):
        raise UsageError("a command line starts with the command's name.")
    return Line(command=tokens[0].value, tokens=tokens[1:])


@dataclass
class Bound:
    """A line bound to a command's parameters."""

    params: dict[str, Any]
    #: -ResultSize: a number, None (not given) or "unlimited"
    result_size: int | str | None = None
    cursor: str | None = None


def bind(command: str, params: list[Param], tokens: list[Word | Name], *, lists: bool) -> Bound:
    bound = Bound(params={})
    positional: list[Word] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if isinstance(token, Word):
            positional.append(token)
            continue
        key = normalize(token.name)
        if lists and key in ("resultsize", "cursor"):
            word = token.attached
            if word is None and i < len(tokens) and isinstance(tokens[i], Word):
                word = tokens[i]  # type: ignore[assignment]
                i += 1
            if word is None or not isinstance(word.value, str):
                raise UsageError(f"-{token.name} needs a value.")
            if key == "cursor":
                bound.cursor = word.value
            else:
                bound.result_size = _result_size(word.value)
            continue
        param = find_param(params, token.name)
        if param is None:
            names = ", ".join("-" + p.pwsh for p in params) or "none"
            extra = ", -ResultSize" if lists else ""
            raise UsageError(
                f"{command} has no parameter -{token.name}.",
                hint=f"Its parameters: {names}{extra}.",
            )
        word = token.attached
        if word is None and param.switch:
            follows = tokens[i] if i < len(tokens) else None
            if isinstance(follows, Word) and _is_bool(follows):
                word, i = follows, i + 1
            else:
                word = Word("$true")
        elif word is None:
            follows = tokens[i] if i < len(tokens) else None
            if not isinstance(follows, Word) and param.secret:
                # -Password alone: asked for without echo (cli/secret_input.py)
                from bastion.cli.secret_input import read_secret

                what = (param.description.rstrip(".") or param.name).lower()
                bound.params[param.name] = read_secret(
                    flag=f"-{param.pwsh}",
                    what=what,
                    otherwise=f"Give it after the name: -{param.pwsh} 'value' (lines naming "
                    "a password stay out of the shell's history).",
                )
                continue
            if not isinstance(follows, Word):
                raise UsageError(f"-{param.pwsh} needs a value.", hint=_what(param))
            word, i = follows, i + 1
        bound.params[param.name] = _convert(param, word)
    if positional:
        identity = next((p for p in params if p.name == "identity"), None)
        if identity is None or identity.name in bound.params or len(positional) > 1:
            raise UsageError(
                f"{command}: a value without a parameter name: {_show(positional[0])}.",
                hint="Name its parameter: -Name value.",
            )
        bound.params[identity.name] = _convert(identity, positional[0])
    return bound


def _is_bool(word: Word) -> bool:
    return (
        isinstance(word.value, str)
        and not word.quoted
        and word.value.lower()
        in (
            "$true",
            "$false",
            "true",
            "false",
        )
    )


def _result_size(text: str) -> int | str:
    if text.lower() == "unlimited":
        return "unlimited"
    try:
        value = int(text)
    except ValueError:
        raise UsageError(
            f"-ResultSize {text}: give a number or Unlimited.", hint="-ResultSize 50"
        ) from None
    if value < 1:
        raise UsageError("-ResultSize must be at least 1.")
    return value


def _convert(param: Param, word: Word) -> Any:
    value = word.value
    try:
        if isinstance(value, list):
            if param.kind != "array":
                raise ValueError("takes one value, not a list")
            return [param.convert_item(v) for v in value]
        if not word.quoted and value.lower() == NULL:
            if not param.nullable:
                raise ValueError("cannot be $null")
            return None
        if not word.quoted and value.lower() in ("$true", "$false"):
            value = value[1:]
        if param.kind == "array":
            return [param.convert_item(value)]
        return param.convert_item(value)
    except ValueError as exc:
        raise UsageError(f"-{param.pwsh}: {exc}.", hint=_what(param)) from None


def _what(param: Param) -> str:
    return f"-{param.pwsh} takes {param.type_text}" + (
        f" (one of: {', '.join(str(c) for c in param.choices)})." if param.choices else "."
    )


def _show(word: Word) -> str:
    return ",".join(word.value) if isinstance(word.value, list) else word.value
