"""What the declarations promise clients, checked over every command of every service:

- a parameter that carries a password is marked secret in the catalog (``writeOnly``,
  ``format: password``), so clients never take it from the command line, and the audit
  log redacts it by name;
- every listing that takes an ``identity`` answers 404 when it names nothing (the plane
  does it for the listings that declare ``identifies``).
"""

from __future__ import annotations

from bastion.http.command_routes import SECRET_PARAMETERS
from bastion.services import SERVICES


def test_password_parameters_are_marked_secret_and_redacted() -> None:
    found = []
    for commands in SERVICES:
        for spec in commands:
            properties = spec.parameters.model_json_schema().get("properties", {})
            for name, schema in properties.items():
                marked = schema.get("writeOnly") is True and schema.get("format") == "password"
                if "password" in name or "secret" in name:
                    assert marked, f"{spec.name} {name} is not marked secret"
                if marked:
                    assert name in SECRET_PARAMETERS, f"{spec.name} {name} is not redacted"
                    found.append(f"{spec.name} {name}")
    assert found == ["New-User password", "Set-User password"]


def test_every_listing_with_an_identity_is_not_found_when_it_names_nothing() -> None:
    listings = [s for commands in SERVICES for s in commands if s.lists]
    with_identity = {
        s.name for s in listings if "identity" in s.parameters.model_json_schema()["properties"]
    }
    assert with_identity == {"Get-User", "Get-Group", "Get-Mailbox", "Get-Site", "Get-ChatUser"}
    assert {s.name for s in listings if s.identifies == "identity"} == with_identity
