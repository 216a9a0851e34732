"""A service's HTTP surface: its catalog and one endpoint per command.

``GET  /api/{service}/commands``         the catalog, derived from the declarations
``POST /api/{service}/commands/{Name}``  run a command with a JSON object of parameters

Around every command runs the pipeline of ``bastion.plane.pipeline``, whose table lists
its steps in the order they run. This module is only the HTTP edge of it: it turns a
Starlette request into the framework-neutral ``Incoming``, the answer into a response, and
an error into problem details (RFC 9457) with the ``WWW-Authenticate`` challenges of
RFC 6750 section 3 and RFC 9470 section 3.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.core.errors import BastionError, InvalidToken
from bastion.http.endpoint_support import authority_of, base_url
from bastion.plane import idempotency, pipeline
from bastion.plane.call import SECRET_PARAMETERS, Incoming
from bastion.plane.command_errors import CommandNotFound, StepUpRequired
from bastion.plane.declare import CommandSpec
from bastion.plane.remote_keys import RemoteKeys
from bastion.plane.roles import Roles
from bastion.plane.service import Service

__all__ = ["SECRET_PARAMETERS", "catalog", "routes", "run_command"]


def _problem(exc: BastionError, request: Request) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, StepUpRequired):
        max_age = f", max_age={exc.max_age}" if exc.max_age is not None else ""
        headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_user_authentication", '
            f'error_description="{exc.detail}"{max_age}, '
            f'acr_values="{exc.acr_values}"'
        )
    elif isinstance(exc, InvalidToken):
        if exc.extra.get("missing"):
            headers["WWW-Authenticate"] = 'Bearer realm="bastion"'
        else:
            description = exc.detail.replace('"', "'")
            headers["WWW-Authenticate"] = (
                f'Bearer realm="bastion", error="invalid_token", error_description="{description}"'
            )
    body = exc.problem_details(request.url.path)
    body.pop("missing", None)
    return JSONResponse(
        body, status_code=exc.status, headers=headers, media_type="application/problem+json"
    )


def services_of(request: Request) -> dict[str, Service]:
    """The services of the application serving ``request``, by name (``create_app``)."""
    services: dict[str, Service] = request.app.state.services
    return services


def roles_of(request: Request) -> Roles:
    """The roles of the application's services (``create_app``)."""
    roles: Roles = request.app.state.roles
    return roles


def commands_of(request: Request) -> Mapping[str, Mapping[str, CommandSpec]]:
    """Every command of the application's services, by service and name (built once)."""
    state = request.app.state
    table: dict[str, dict[str, CommandSpec]] | None = getattr(state, "command_table", None)
    if table is None:
        table = {
            name: {spec.name: spec for spec in service}
            for name, service in services_of(request).items()
        }
        state.command_table = table
    return table


def catalog(request: Request) -> Response:
    """The catalog, with a strong ``ETag`` (a hash of its JSON, also given in the body as
    ``version``) and ``Cache-Control: no-cache``: clients keep it and revalidate it with
    ``If-None-Match``, which is answered ``304`` while it is unchanged."""
    name = request.path_params["service"]
    service = services_of(request).get(name)
    if service is None:
        return _problem(CommandNotFound(f"there is no service '{name}'."), request)
    content, etag = service.catalog()
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    # RFC 9110 section 13.1.2: a list of entity tags, or "*", compared weakly
    asked = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/") for tag in asked.split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def run_command(request: Request, body: bytes) -> Response:
    """Hand the request to the pipeline (``bastion.plane.pipeline``) and its answer back."""
    started = time.perf_counter()
    headers = request.headers
    incoming = Incoming(
        service=request.path_params["service"],
        name=request.path_params["name"],
        body=body,
        authorization=headers.get("authorization", ""),
        content_type=headers.get("content-type", ""),
        idempotency_key=headers.get(idempotency.HEADER),
        base_url=base_url(request),
        remote=getattr(request.app.state, "remote_keys", None),
    )
    answer = pipeline.run(
        authority_of(request), incoming, commands_of(request), roles_of(request), started=started
    )
    replayed = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(answer.content, media_type="application/json", headers=replayed)


async def command_endpoint(request: Request) -> Response:
    body = await request.body()
    try:
        return await run_in_threadpool(run_command, request, body)
    except BastionError as exc:
        return _problem(exc, request)


async def catalog_endpoint(request: Request) -> Response:
    return catalog(request)


routes = [
    Route("/api/{service}/commands", catalog_endpoint, methods=["GET"]),
    Route("/api/{service}/commands/{name}", command_endpoint, methods=["POST"]),
]


def standalone_routes(services: Sequence[Service], keys: RemoteKeys) -> list[Route]:
    """The command plane's routes for the services served alone (docs/decisions/0010);
    other services, and the authority, are not found here. A command's bearer token has
    its issuer's keys fetched, when needed, before the command opens a transaction."""
    served = frozenset(service.name for service in services)

    def only_served(route: Route) -> Route:
        endpoint = route.endpoint

        async def served_endpoint(request: Request) -> Response:
            if request.path_params["service"] not in served:
                raise HTTPException(404)
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if request.method == "POST" and scheme.lower() == "bearer" and token.strip():
                await run_in_threadpool(keys.prefetch, token.strip())
            response: Response = await endpoint(request)
            return response

        return Route(route.path, served_endpoint, methods=route.methods)

    return [only_served(route) for route in routes]
