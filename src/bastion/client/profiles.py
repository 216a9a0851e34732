"""Named profiles (S15): each a server URL, a tenant, a sign-in method and session options,
with its own token cache; one of them is current.

They live in ``{config_dir}/profiles.json`` (mode 0600)::

    {"current": "prod",
     "profiles": {"prod": {"url": "https://bastion.example.org", "tenant": "contoso",
                           "method": "auto", "proxy": null, "timeout": null,
                           "ca_bundle": null, "retries": null}}}

``connect`` takes its settings from its arguments first, then from the profile (the one
named, else ``$BASTION_PROFILE``, else the current one), then from defaults. A profile may
hold a proxy URL with credentials: the password is not kept in this file but sealed apart,
under a key of its own (``profile_secrets``), and put back in the URL when the profile is
read.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bastion.client import files
from bastion.client.errors import ConfigError
from bastion.client.profile_secrets import ProfileSecrets, split_password

if TYPE_CHECKING:
    from bastion.client.signin.application import AppCredential

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Profile:
    name: str
    url: str
    tenant: str
    method: str = "auto"
    proxy: str | None = None
    timeout: float | None = None
    ca_bundle: str | None = None
    retries: int | None = None
    #: an application's ID, when the profile signs in as that application (S7)
    app_id: str | None = None
    #: the application's certificate file (its path only: the key stays in the file)
    certificate: str | None = None
    #: the file where a platform writes the application's federated token (its path)
    federated_token_file: str | None = None
    #: whether this is the current profile (not stored in the profile itself)
    current: bool = False

    @property
    def issuer(self) -> str:
        return f"{self.url}/t/{self.tenant}"

    @property
    def application(self) -> AppCredential | None:
        """The application this profile signs in as, if it is not a person's."""
        from bastion.client.signin.application import credential

        return credential(self.app_id, self.certificate, self.federated_token_file)


def check_url(url: str) -> str:
    """The server's base URL, without a trailing slash. Plain HTTP only on loopback."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"'{url}' is not a server URL.", hint="Give one like https://bastion.example.org."
        )
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ConfigError(
            f"'{url}' uses plain HTTP: passwords and tokens would cross the network unprotected.",
            hint="Use https (plain http is accepted only for 127.0.0.1, [::1] and localhost).",
        )
    return url


def check_tenant(tenant: str) -> str:
    if not TENANT.match(tenant or ""):
        raise ConfigError(f"'{tenant}' is not a tenant name.", hint="Give the tenant's short name.")
    return tenant


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise ConfigError(
            f"'{name}' is not a profile name.",
            hint="Use letters, digits, '.', '_' and '-' (at most 64), starting with a letter "
            "or digit.",
        )
    return name


class ProfileStore:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.path = config_dir / "profiles.json"
        self.lock_path = config_dir / "profiles.lock"

    def read(self) -> dict[str, Any]:
        raw = files.read_bytes(self.path)
        if raw is None:
            return {"current": None, "profiles": {}}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{self.path} is not valid JSON: {exc}.", hint="Fix or remove the file."
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
            raise ConfigError(f"{self.path} is not a profiles file.", hint="Fix or remove it.")
        data.setdefault("profiles", {})
        data.setdefault("current", None)
        return data

    def write(self, data: dict[str, Any]) -> None:
        from bastion.client.profile_secrets import seal_body

        files.private_dir(self.config_dir)
        data = {
            **data,
            "profiles": {
                name: seal_body(self.config_dir, name, body)
                for name, body in data["profiles"].items()
            },
        }
        files.write_private(self.path, (json.dumps(data, indent=2) + "\n").encode())

    def _profile(self, name: str, body: dict[str, Any], current: str | None) -> Profile:
        from bastion.client.profile_secrets import open_body

        return _profile(name, open_body(self.config_dir, name, body), current)

    def profiles(self) -> list[Profile]:
        data = self.read()
        return [
            self._profile(name, body, data["current"]) for name, body in data["profiles"].items()
        ]

    def get(self, name: str) -> Profile:
        data = self.read()
        body = data["profiles"].get(name)
        if body is None:
            known = ", ".join(sorted(data["profiles"])) or "none yet"
            raise ConfigError(
                f"there is no profile '{name}'.",
                hint=f"Profiles: {known}. Add one first (add_profile).",
                cli_hint=f"Profiles: {known}. Add one first: bastion connect --url URL "
                f"--tenant NAME --profile {name}.",
            )
        return self._profile(name, body, data["current"])

    def current(self) -> Profile | None:
        name = os.environ.get("BASTION_PROFILE") or self.read().get("current")
        return self.get(name) if name else None


_STORED = tuple(f.name for f in fields(Profile) if f.name not in ("name", "current"))


def _profile(name: str, body: dict[str, Any], current: str | None) -> Profile:
    values: dict[str, Any] = {k: body[k] for k in _STORED if body.get(k) is not None}
    try:
        return Profile(name=name, current=name == current, **values)
    except TypeError as exc:
        raise ConfigError(f"profile '{name}' is incomplete: {exc}.") from exc


def list_profiles(config_dir: str | os.PathLike[str] | None = None) -> list[Profile]:
    """Every profile, the current one marked ``current``."""
    return ProfileStore(files.config_dir_of(config_dir)).profiles()


def get_profile(name: str, config_dir: str | os.PathLike[str] | None = None) -> Profile:
    return ProfileStore(files.config_dir_of(config_dir)).get(name)


def current_profile(config_dir: str | os.PathLike[str] | None = None) -> Profile | None:
    """The profile ``$BASTION_PROFILE`` names, else the current one, else None."""
    return ProfileStore(files.config_dir_of(config_dir)).current()


def add_profile(
    name: str,
    url: str,
    tenant: str,
    *,
    method: str = "auto",
    proxy: str | None = None,
    timeout: float | None = None,
    ca_bundle: str | None = None,
    retries: int | None = None,
    app_id: str | None = None,
    certificate: str | os.PathLike[str] | None = None,
    federated_token_file: str | os.PathLike[str] | None = None,
    make_current: bool | None = None,
    replace_existing: bool = False,
    config_dir: str | os.PathLike[str] | None = None,
) -> Profile:
    """Add a profile (or, with ``replace_existing``, change one). The first profile becomes
    current; ``make_current=True`` makes this one current. With ``app_id`` and a
    ``certificate`` or a ``federated_token_file``, the profile signs in as that application
    (the file's path is kept, never what it holds)."""
    from bastion.client.signin import check_method
    from bastion.client.signin.application import credential

    check_name(name)
    if method == "token":
        raise ConfigError(
            "a profile cannot use the 'token' method: tokens are given to connect() itself.",
            hint="Choose auto, browser, device or terminal.",
        )
    profile = Profile(
        name=name,
        url=check_url(url),
        tenant=check_tenant(tenant),
        method=check_method(method),
        proxy=proxy or None,
        timeout=check_timeout(timeout),
        ca_bundle=ca_bundle or None,
        retries=check_retries(retries),
    )
    application = credential(app_id, certificate, federated_token_file)
    if application is not None:
        profile = replace(
            profile,
            app_id=application.app_id,
            certificate=str(application.certificate) if application.certificate else None,
            federated_token_file=(
                str(application.federated_token_file) if application.federated_token_file else None
            ),
        )
    store = ProfileStore(files.config_dir_of(config_dir))
    with files.exclusive_lock(store.lock_path):
        data = store.read()
        if name in data["profiles"] and not replace_existing:
            raise ConfigError(
                f"profile '{name}' exists already.",
                hint="Remove it first (remove_profile), or pass replace_existing=True.",
                cli_hint=f"Remove it first (bastion profile remove {name}), or give --replace.",
            )
        if data["profiles"].get(name, {}).get("url") not in (None, profile.url) or data[
            "profiles"
        ].get(name, {}).get("tenant") not in (None, profile.tenant):
            _wipe_tokens(store.config_dir, name)  # its tokens belong to another issuer
        data["profiles"][name] = {k: v for k, v in asdict(profile).items() if k in _STORED}
        if make_current or (make_current is None and not data.get("current")):
            data["current"] = name
        store.write(data)
        if profile.proxy is None or split_password(profile.proxy)[1] is None:
            ProfileSecrets(store.config_dir, name).wipe()  # a replaced proxy's password
    return replace(profile, current=data["current"] == name)


def use_profile(name: str, config_dir: str | os.PathLike[str] | None = None) -> Profile:
    """Make ``name`` the current profile."""
    store = ProfileStore(files.config_dir_of(config_dir))
    with files.exclusive_lock(store.lock_path):
        data = store.read()
        profile = store.get(name)
        data["current"] = name
        store.write(data)
    return replace(profile, current=True)


def remove_profile(name: str, config_dir: str | os.PathLike[str] | None = None) -> None:
    """Remove a profile and wipe its token cache and key (locally: to end the sign-in at the
    server too, ``disconnect()`` a connection of the profile first)."""
    store = ProfileStore(files.config_dir_of(config_dir))
    with files.exclusive_lock(store.lock_path):
        data = store.read()
        store.get(name)
        del data["profiles"][name]
        if data.get("current") == name:
            data["current"] = None
        store.write(data)
        ProfileSecrets(store.config_dir, name).wipe()
    _wipe_tokens(store.config_dir, name)


def _wipe_tokens(config_dir: Path, slot: str) -> None:
    from bastion.client.cache import TokenCache

    TokenCache(config_dir, slot).wipe()


def check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"timeout {timeout!r} must be a positive number of seconds.")
    return float(timeout)


def check_retries(retries: int | None) -> int | None:
    if retries is None:
        return None
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigError(f"retries {retries!r} must be a whole number from 0 to 10.")
    return retries
