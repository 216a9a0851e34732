"""The client's public surface: deliberate, and cheap to import."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import bastion
import bastion.client

PUBLIC = {
    "Account",
    "ClientError",
    "CommandInfo",
    "ConfigError",
    "ConflictError",
    "Connection",
    "IssuerMismatch",
    "Listing",
    "ListingIncomplete",
    "NetworkError",
    "NotFoundError",
    "Page",
    "PermissionDenied",
    "Profile",
    "Prompt",
    "ProxyError",
    "ServerError",
    "SignInFailed",
    "SignInRequired",
    "Status",
    "StepUpRequired",
    "TerminalPrompt",
    "UsageError",
    "add_profile",
    "connect",
    "current_profile",
    "get_profile",
    "list_profiles",
    "remove_profile",
    "status",
    "use_profile",
}


def test_the_public_names() -> None:
    assert set(bastion.client.__all__) == PUBLIC
    # every module loaded: no submodule may shadow a public name
    for module in pkgutil.walk_packages(bastion.client.__path__, "bastion.client."):
        importlib.import_module(module.name)
    for name in PUBLIC:
        value = getattr(bastion.client, name)
        assert not isinstance(value, types.ModuleType), name
        assert value.__module__.startswith("bastion.client"), name
    assert bastion.connect is bastion.client.connect
    assert "connect" in bastion.__all__


def test_every_error_is_a_client_error_with_an_exit_code() -> None:
    for name in PUBLIC:
        value = getattr(bastion.client, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, bastion.client.ClientError), name
            assert value.exit_code in (1, 2, 3, 4, 5), name


def test_importing_is_cheap() -> None:
    """``import bastion`` and ``import bastion.client`` load neither httpx nor the server."""
    code = (
        "import sys, bastion, bastion.client; "
        "heavy = [m for m in ('httpx', 'keyring', 'cryptography', 'sqlalchemy', 'starlette',"
        " 'bastion.client.connection') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
