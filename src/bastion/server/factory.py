"""Building the application inside each server worker from the environment."""

from __future__ import annotations

import os

from starlette.types import ASGIApp

from bastion.core.config import Settings
from bastion.server import json_logs as web_logging
from bastion.server.app import create_app
from bastion.server.context import ServerContext


def create() -> ASGIApp:
    """uvicorn's factory: settings come from BASTION_* variables set by ``bastion serve``."""
    web_logging.configure(os.environ.get("BASTION_LOG_LEVEL", "INFO"))
    # The parent process has already applied migrations.
    auth = ServerContext.open(Settings.from_env(), migrate=False)
    return create_app(auth, https=os.environ.get("BASTION_HTTPS") == "1")
