"""Named profiles (S15) and how a connection's settings are resolved (S4)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bastion.client import (
    ConfigError,
    add_profile,
    current_profile,
    get_profile,
    list_profiles,
    remove_profile,
    use_profile,
)
from bastion.client.cache import TokenCache
from bastion.client.settings import resolve

URL = "https://bastion.example.org"


def test_add_list_use_remove(tmp_path: Path) -> None:
    first = add_profile("prod", URL, "contoso", config_dir=tmp_path)
    assert first.current  # the first profile becomes current
    add_profile(
        "eu", "https://eu.example.org/", "contoso", method="device", timeout=5, config_dir=tmp_path
    )
    names = {p.name: p for p in list_profiles(tmp_path)}
    assert set(names) == {"prod", "eu"} and names["prod"].current and not names["eu"].current
    assert names["eu"].url == "https://eu.example.org" and names["eu"].timeout == 5.0
    assert use_profile("eu", tmp_path).current
    current = current_profile(tmp_path)
    assert current is not None and current.name == "eu"
    remove_profile("eu", tmp_path)
    assert current_profile(tmp_path) is None
    assert [p.name for p in list_profiles(tmp_path)] == ["prod"]
    path = tmp_path / "profiles.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["profiles"]["prod"]["tenant"] == "contoso"


def test_a_profile_is_not_replaced_by_accident(tmp_path: Path) -> None:
    add_profile("prod", URL, "contoso", config_dir=tmp_path)
    with pytest.raises(ConfigError, match="exists already"):
        add_profile("prod", URL, "fabrikam", config_dir=tmp_path)
    changed = add_profile("prod", URL, "fabrikam", replace_existing=True, config_dir=tmp_path)
    assert changed.tenant == "fabrikam" and get_profile("prod", tmp_path).tenant == "fabrikam"


@pytest.mark.parametrize(
    ("name", "url", "tenant", "message"),
    [
        ("../x", URL, "t", "not a profile name"),
        ("p", "ftp://example.org", "t", "not a server URL"),
        ("p", "http://bastion.example.org", "t", "plain HTTP"),
        ("p", URL, "a/b", "not a tenant name"),
    ],
)
def test_bad_profiles_are_refused(
    tmp_path: Path, name: str, url: str, tenant: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        add_profile(name, url, tenant, config_dir=tmp_path)
    assert caught.value.exit_code == 2 and caught.value.hint


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sign-in method"):
        add_profile("p", URL, "t", method="password", config_dir=tmp_path)
    with pytest.raises(ConfigError, match="timeout"):
        add_profile("p", URL, "t", timeout=-1, config_dir=tmp_path)
    with pytest.raises(ConfigError, match="retries"):
        add_profile("p", URL, "t", retries=99, config_dir=tmp_path)


def test_plain_http_is_fine_on_loopback(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:8700", "http://[::1]:8700", "http://localhost:8700"):
        assert add_profile("p", url, "t", replace_existing=True, config_dir=tmp_path).url == url


def test_arguments_then_profile_then_defaults(tmp_path: Path) -> None:
    add_profile(
        "prod", URL, "contoso", method="device", proxy="http://proxy:3128", retries=5,
        config_dir=tmp_path,
    )  # fmt: skip
    settings = resolve(tmp_path)  # the current profile
    assert settings.profile == "prod" and settings.slot == "prod"
    assert settings.method == "device" and settings.options.proxy == "http://proxy:3128"
    assert settings.options.retries == 5 and settings.options.timeout == 30.0
    settings = resolve(tmp_path, profile="prod", method="browser", timeout=3, proxy="")
    assert settings.method == "browser" and settings.options.timeout == 3.0
    assert not settings.options.proxy
    # url and tenant of a known profile use that profile and its cache
    assert resolve(tmp_path, url=URL + "/", tenant="contoso").slot == "prod"
    # others get a cache of their own, outside any profile
    other = resolve(tmp_path, url="https://other.example.org", tenant="contoso")
    assert other.profile is None and other.slot.startswith("_")
    assert other.options.retries == 3 and other.method == "auto"


def test_bastion_profile_selects_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_profile("prod", URL, "contoso", config_dir=tmp_path)
    add_profile("test", URL, "testing", config_dir=tmp_path)
    monkeypatch.setenv("BASTION_PROFILE", "test")
    assert resolve(tmp_path).tenant == "testing"


def test_nothing_to_connect_to(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no server to connect to"):
        resolve(tmp_path)
    with pytest.raises(ConfigError, match="both a server URL and a tenant"):
        resolve(tmp_path, url=URL)
    with pytest.raises(ConfigError, match="no profile 'nope'"):
        resolve(tmp_path, profile="nope")
    with pytest.raises(ConfigError, match="needs an access token"):
        resolve(tmp_path, url=URL, tenant="t", method="token")


def test_a_damaged_profiles_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "profiles.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        list_profiles(tmp_path)


def test_removing_or_repointing_a_profile_wipes_its_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    add_profile("prod", URL, "contoso", config_dir=tmp_path)
    cache = TokenCache(tmp_path, "prod")
    with cache.transaction() as state:
        state.refresh_token = "rt"
    add_profile("prod", URL, "fabrikam", replace_existing=True, config_dir=tmp_path)
    assert not cache.path.exists()
    with cache.transaction() as state:
        state.refresh_token = "rt"
    remove_profile("prod", tmp_path)
    assert not cache.path.exists() and not (tmp_path / "keys" / "prod.key").exists()
