"""The application: the HTTP edge's routes for the authority and the chosen services,
the context object in ``app.state``, and the middleware around them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from bastion.core.errors import BastionError
from bastion.http import (
    account_pages,
    authorize,
    device_pages,
    discovery_endpoints,
    logout,
    oauth_endpoints,
    signin_pages,
)
from bastion.http import command_routes as plane_http
from bastion.http.application import (
    STATIC,
    RequestMiddleware,
    healthz,
    on_bastion_error,
    on_crash,
    on_http_error,
)
from bastion.http.request_limits import EdgeMiddleware
from bastion.plane.remote_keys import RemoteKeys
from bastion.plane.service import Service, built_in_roles
from bastion.server.context import ServerContext
from bastion.services import SERVICES


def create_app(
    auth: ServerContext, *, services: Sequence[Service] = SERVICES, https: bool = False
) -> ASGIApp:
    """The server for ``auth``, offering ``services``: all of them with the authority, or
    those its settings choose when they are served alone (docs/decisions/0010)."""
    keys: RemoteKeys | None = None
    routes: list[Any]
    if auth.settings.standalone:
        keys = RemoteKeys.for_authority(auth)
        chosen = frozenset(auth.settings.services)
        services = [service for service in services if service.name in chosen]
        routes = [Route("/healthz", healthz), *plane_http.standalone_routes(services, keys)]
    else:
        # The busiest first: Starlette tries the routes in order for every request. No
        # pattern of one group matches a path of another (/api/..., /t/{tenant}/oauth2/...).
        routes = [
            Route("/healthz", healthz),
            *plane_http.routes,
            *oauth_endpoints.routes,
            *discovery_endpoints.routes,
            *authorize.routes,
            *signin_pages.routes,
            *device_pages.routes,
            *logout.routes,
            *account_pages.routes,
            Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            BastionError: on_bastion_error,
            HTTPException: on_http_error,
            Exception: on_crash,
        },
    )
    app.state.authority = auth
    # The command plane finds its services here (``plane_http.services_of``), and
    # discovery their audiences.
    app.state.services = {service.name: service for service in services}
    app.state.roles = built_in_roles(services)
    if keys is not None:
        app.state.remote_keys = keys
    edge = EdgeMiddleware(app, base_url=auth.settings.base_url, render=on_bastion_error)
    return RequestMiddleware(edge, https=https)
