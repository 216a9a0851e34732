"""``bastion connect --app-id ID --certificate FILE | --federated-token-file FILE``: the
options, their help, and the profile it saves (the authority played by httpx.MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bastion.cli.main import main
from bastion.client import profiles
from bastion.client.http import Http
from bastion.client.signin import application
from tests.client.test_application_sign_in import APP_ID, TENANT, URL, Authority, pem_file


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BASTION_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("BASTION_KEY_STORAGE", "file")
    monkeypatch.delenv("BASTION_PROFILE", raising=False)
    monkeypatch.delenv("BASTION_CERTIFICATE_PASSWORD", raising=False)
    monkeypatch.setattr(application, "_warned", set())
    return tmp_path / "config"


@pytest.fixture
def authority(monkeypatch: pytest.MonkeyPatch) -> Authority:
    served = Authority()
    monkeypatch.setattr(
        Http, "_make_client", lambda self: httpx.Client(transport=httpx.MockTransport(served))
    )
    return served


def test_the_help_shows_the_application_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["connect", "--help"])
    assert leaving.value.code == 0
    out = capsys.readouterr().out
    for shown in (
        "--app-id ID",
        "--certificate FILE",
        "--federated-token-file FILE",
        "BASTION_CERTIFICATE_PASSWORD",
        "--app-id 2f1c0a4e-8d3b-4f7a-9e61-5b0c2d7a9f13 --certificate /etc/bastion/app.pem",
    ):
        assert shown in " ".join(out.split()), shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--certificate", "a.pem", "--federated-token-file", "t"], "not allowed with"),
        (["--app-id", APP_ID], "--app-id needs the application's credential"),
        (["--certificate", "a.pem"], "need --app-id"),
        (["--federated-token-file", "t"], "need --app-id"),
        (
            ["--app-id", APP_ID, "--certificate", "a.pem", "--method", "device"],
            "--method signs a person in",
        ),
        (["--app-id", "nightly", "--certificate", "a.pem"], "not an application ID"),
    ],
)
def test_the_application_options_go_together(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["connect", "--url", URL, "--tenant", TENANT, *args]) == 2
    assert message in capsys.readouterr().err


def test_connect_saves_the_application_in_the_profile(
    authority: Authority, tmp_path: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pem_file(tmp_path / "app.pem")
    argv = ["connect", "--url", URL, "--tenant", TENANT, "--profile", "jobs"]
    assert main([*argv, "--app-id", APP_ID, "--certificate", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"as Nightly reports (application {APP_ID})" in err and "profile 'jobs'" in err
    saved = profiles.get_profile("jobs")
    assert (saved.app_id, saved.certificate, saved.current) == (APP_ID, str(path), True)
    assert b"PRIVATE KEY" not in (config_dir / "profiles.json").read_bytes()
    # the profile signs in again by itself, with a new assertion
    assert main(["connect", "--force"]) == 0
    assert len(authority.token_requests) == 2
    assert {form["client_id"] for form in authority.token_requests} == {APP_ID}
    stored = json.loads((config_dir / "profiles.json").read_text())["profiles"]["jobs"]
    assert stored["certificate"] == str(path)


def test_an_expired_certificate_exits_4_naming_the_file(
    authority: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pem_file(tmp_path / "old.pem", days=-1, started_days_ago=300)
    argv = ["connect", "--url", URL, "--tenant", TENANT, "--app-id", APP_ID]
    assert main([*argv, "--certificate", str(path)]) == 4
    err = capsys.readouterr().err
    assert f"the certificate in {path} has ended" in err and "in a terminal" not in err
    assert authority.token_requests == []
    assert profiles.list_profiles() == []  # nothing saved for a sign-in that failed


def test_a_certificate_that_ends_soon_warns_on_stderr(
    authority: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pem_file(tmp_path / "app.pem", days=5.5)
    argv = ["connect", "--url", URL, "--tenant", TENANT, "--app-id", APP_ID]
    assert main([*argv, "--certificate", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"bastion: warning: the certificate in {path} ends on" in err and "in 5 days" in err
