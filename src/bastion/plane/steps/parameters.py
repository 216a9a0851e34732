"""Reading a command's parameters: a JSON object (RFC 8259) of flat values, then the
listing's paging parameters, then the command's own declared parameters.

Each refusal is a 400 problem details naming the parameter and what is allowed, or a 415
for a body that is not JSON."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from bastion.core.errors import UnsupportedMediaType, UsageError
from bastion.plane import listings as paging
from bastion.plane.call import Call
from bastion.plane.declare import CommandSpec

#: the edge refuses a larger body while it streams, before authentication; this is the
#: same figure (``bastion.http.request_limits.COMMAND_LIMIT``, a test keeps them equal) without
#: importing the HTTP framework
MAX_BODY = 256 * 1024
#: parameters are flat objects of values and lists: deeper JSON is refused, not parsed on
MAX_DEPTH = 32


def check_media_type(call: Call) -> None:
    """Parameters are JSON: a body of any other declared type is refused (415)."""
    if not call.incoming.body:
        return
    media_type = call.incoming.content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"the parameters must be sent as application/json, not '{media_type or 'nothing'}'.",
            hint="Send a JSON object with Content-Type: application/json.",
        )


def read_parameters(call: Call) -> None:
    """The body as a JSON object; no body is no parameters."""
    body = call.incoming.body
    if len(body) > MAX_BODY:
        raise UsageError(f"the parameters are larger than {MAX_BODY} bytes.")
    try:
        raw = json.loads(body or b"{}")
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:
        raise UsageError("the body is not JSON.", hint="Send a JSON object of parameters.") from exc
    if not isinstance(raw, dict):
        raise UsageError("the body must be a JSON object of parameters.")
    _check_values(raw)
    call.raw = raw


def _too_deep() -> UsageError:
    return UsageError(
        f"the parameters are nested more than {MAX_DEPTH} levels deep.",
        hint="Send a JSON object of parameters: values, lists and small objects.",
    )


def _check_values(raw: dict[str, Any]) -> None:
    """Refuse JSON no parameter can hold: nesting deeper than ``MAX_DEPTH``, and strings
    with an unpaired surrogate (which cannot be encoded for any database)."""
    stack: list[tuple[Any, int, str]] = [(value, 2, name) for name, value in raw.items()]
    if any(_unpaired_surrogate(name) for name in raw):
        raise UsageError("a parameter's name holds an unpaired surrogate.")
    while stack:
        value, depth, parameter = stack.pop()
        if isinstance(value, str):
            if _unpaired_surrogate(value):
                raise UsageError(
                    f"parameter '{parameter}': holds an unpaired surrogate.",
                    hint="Send text as valid Unicode.",
                    parameter=parameter,
                )
        elif isinstance(value, list | dict):
            if depth > MAX_DEPTH:
                raise _too_deep()
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1, parameter) for item in items)


def _unpaired_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def take_paging(call: Call) -> None:
    """Take ``cursor``, ``page_size`` and ``count`` out of a listing command's parameters.
    From here a refusal's record names the parameters as sent."""
    raw = call.known = call.raw
    if not call.spec.lists:
        return
    cursor = raw.pop("cursor", None)
    size = raw.pop("page_size", paging.DEFAULT_PAGE_SIZE)
    count = raw.pop("count", False)
    if not isinstance(count, bool):
        raise UsageError("parameter 'count': must be true or false.", parameter="count")
    if cursor is not None and not isinstance(cursor, str):
        raise UsageError(
            "parameter 'cursor': must be the string a previous page returned.", parameter="cursor"
        )
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= paging.MAX_PAGE_SIZE:
        raise UsageError(
            f"parameter 'page_size': must be a whole number from 1 to {paging.MAX_PAGE_SIZE}.",
            parameter="page_size",
        )
    call.cursor, call.page_size, call.count = cursor, size, count


def validate_parameters(call: Call) -> None:
    """The command's declared parameters: the arguments for its function, and the same as
    JSON for the audit record and the cursor's binding."""
    spec = call.spec
    try:
        model = spec.parameters.model_validate(call.raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        allowed = _allowed(spec, str(first["loc"][0]) if first["loc"] else "")
        raise UsageError(
            f"parameter '{where}': {first['msg']}.",
            hint=allowed,
            parameter=where,
            errors=[
                {"parameter": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ],
        ) from exc
    call.arguments = {name: getattr(model, name) for name in type(model).model_fields}
    call.params = model.model_dump(mode="json")


def _allowed(spec: CommandSpec, name: str) -> str:
    schema = spec.parameters.model_json_schema()
    properties = schema.get("properties", {})
    if name not in properties:
        return f"{spec.name} takes: {', '.join(properties) or 'no parameters'}."
    described = properties[name].get("description")
    return f"{name}: {described}" if described else f"see the catalog entry of {spec.name}."
