"""What one connection uses: arguments first, then the profile, then defaults."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from bastion.client.errors import ConfigError
from bastion.client.http import DEFAULT_RETRIES, DEFAULT_TIMEOUT, Options
from bastion.client.profiles import (
    Profile,
    ProfileStore,
    check_name,
    check_retries,
    check_tenant,
    check_timeout,
    check_url,
)
from bastion.client.signin import Method, check_method
from bastion.client.signin.application import AppCredential, credential


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    url: str
    tenant: str
    method: Method
    options: Options
    #: the profile used, if any
    profile: str | None
    #: the token cache slot: the profile's name, or for a connection outside any profile a
    #: name derived from its issuer
    slot: str
    token: str | None = None
    #: the application that signs in (its ID and credential file), if it is not a person
    application: AppCredential | None = None


def resolve(
    config_dir: Path,
    *,
    url: str | None = None,
    tenant: str | None = None,
    profile: str | None = None,
    method: str | None = None,
    token: str | None = None,
    proxy: str | None = None,
    timeout: float | None = None,
    ca_bundle: str | None = None,
    retries: int | None = None,
    app_id: str | None = None,
    certificate: str | os.PathLike[str] | None = None,
    federated_token_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """The settings of a connection.

    With ``profile`` (or ``$BASTION_PROFILE``), that profile; with ``url`` and ``tenant``
    alone, the profile for that server and tenant if there is one, else none; with neither,
    the current profile. An application given here (``app_id`` with its credential) is
    found in a profile only if that profile is for the same application."""
    given = credential(app_id, certificate, federated_token_file)
    store = ProfileStore(config_dir)
    chosen: Profile | None
    if profile is not None:
        chosen = store.get(check_name(profile))
    elif url is None and tenant is None:
        chosen = store.current()
        if chosen is None:
            raise ConfigError(
                "no server to connect to: no url and tenant were given, and there is no "
                "current profile.",
                hint="Give connect() url and tenant, or a profile (add_profile).",
                cli_hint="Sign in first: bastion connect --url URL --tenant NAME.",
            )
    else:
        chosen = None
        if url is not None and tenant is not None:
            wanted = (check_url(url), tenant)
            chosen = next(
                (
                    p
                    for p in store.profiles()
                    if (p.url, p.tenant) == wanted and (given is None or p.app_id == given.app_id)
                ),
                None,
            )
    final_url = url if url is not None else (chosen.url if chosen else None)
    final_tenant = tenant if tenant is not None else (chosen.tenant if chosen else None)
    if final_url is None or final_tenant is None:
        raise ConfigError(
            "both a server URL and a tenant are needed.",
            hint="Give connect() url and tenant, or a profile that has them.",
            cli_hint="Give both --url and --tenant to bastion connect.",
        )
    final_url = check_url(final_url)
    check_tenant(final_tenant)
    issuer = f"{final_url}/t/{final_tenant}"
    options = Options(
        proxy=proxy if proxy is not None else (chosen.proxy if chosen else None),
        timeout=_first(check_timeout(timeout), chosen.timeout if chosen else None, DEFAULT_TIMEOUT),
        ca_bundle=ca_bundle if ca_bundle is not None else (chosen.ca_bundle if chosen else None),
        retries=int(
            _first(check_retries(retries), chosen.retries if chosen else None, DEFAULT_RETRIES)
        ),
    )
    chosen_method = method if method is not None else (chosen.method if chosen else "auto")
    application = given
    if given is None and chosen is not None and token is None and method is None:
        application = chosen.application  # a person's method or token given wins
    if given is not None and (token is not None or method is not None):
        raise ConfigError(
            f"application {given.app_id} signs in with its "
            f"{'certificate' if given.certificate else 'federated token'}, not with "
            + ("an access token." if token is not None else f"the '{method}' method."),
            hint="Give either an application's credential or a person's sign-in method.",
            cli_hint="Give either --app-id with its credential, or --method.",
        )
    if token is not None:
        chosen_method = "token"
    elif chosen_method == "token":
        raise ConfigError(
            "the 'token' method needs an access token.",
            hint="Give connect() token=..., or another method.",
        )
    return Settings(
        config_dir=config_dir,
        url=final_url,
        tenant=final_tenant,
        method=check_method(chosen_method),
        options=options,
        profile=chosen.name if chosen else None,
        slot=chosen.name if chosen else _slot(issuer, application),
        token=token,
        application=application,
    )


def _slot(issuer: str, application: AppCredential | None) -> str:
    """The cache slot of a connection outside any profile: one per issuer, and one per
    application of that issuer."""
    key = issuer if application is None else f"{issuer}\napp:{application.app_id}"
    return "_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("no default")
