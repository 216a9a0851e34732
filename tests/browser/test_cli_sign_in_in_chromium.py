"""``bastion connect --method browser`` with the sign-in pages in Debian's Chromium (S1).

The real command runs on a terminal; the system browser it opens is a small script (named
by ``BROWSER``, as Python's ``webbrowser`` honours) that hands the address to this test,
which opens it in Chromium through Playwright. An MFA user types the password, then the
one-time code; the second form's POST is answered with a 303 to the command's loopback
listener on another origin (``http://127.0.0.1:<port>/callback``), which Chromium follows
only when the page's CSP ``form-action`` allows that origin. The command then finishes and
a service command runs on that sign-in.
"""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pexpect

from tests.cli.helpers import Cli
from tests.support.flows import Org, make_tenant
from tests.support.server import ServerProcess


def browser_script(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for the desktop's browser launcher: it writes the address it is given."""
    handed = tmp_path / "opened-url"
    script = tmp_path / "open-browser"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        f"pathlib.Path({str(handed)!r}).write_text(sys.argv[1])\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, handed


def wait_for_file(path: Path, child: pexpect.spawn) -> str:
    for _ in range(600):  # the command opens the browser within a moment of starting
        if path.exists() and path.read_text():
            return path.read_text()
        if not child.isalive():
            break
        time.sleep(0.05)
    raise AssertionError(f"the browser was never opened: {child.before!r}")


def test_connect_with_the_browser_method_in_chromium_with_mfa(
    browser: object, server: ServerProcess, tmp_path: Path
) -> None:
    t: Org = make_tenant(server)
    script, handed = browser_script(tmp_path)
    cli = Cli(tmp_path / "config", extra_env={"BROWSER": f"{script} %s"})
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bastion", "connect", "--url", t.server.base_url, "--tenant", t.name,
         "--method", "browser"],
        env=cli.env(), encoding="utf-8", timeout=60,
    )  # fmt: skip
    try:
        url = wait_for_file(handed, child)
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        assert redirect_uri.startswith("http://127.0.0.1:")  # another origin than the server
        page = browser.new_page()  # type: ignore[attr-defined]
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "violates" in m.text else None)
        page.goto(url)
        page.fill("#username", t.admin.username)
        page.fill("#password", t.admin.password)
        page.click("button[type=submit]")
        assert page.url.endswith("/login/mfa"), page.url
        page.fill("#code", t.admin.code(t.server))
        page.click("button[type=submit]")
        # Chromium followed the 303 to the command's listener, which answered
        page.wait_for_url(redirect_uri + "?*", timeout=15000)
        assert "You are signed in" in page.inner_text("h1")
        assert violations == []
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert f"Signed in to {t.issuer} as {t.admin.username}" in child.before
    # the command line continues on that sign-in, with no person needed any more
    got = cli.json("directory", "get-user", "--identity", t.admin.username, "--non-interactive")
    assert got
