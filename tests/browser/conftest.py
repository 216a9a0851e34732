"""Debian's Chromium, driven by Playwright, for the tests of the sign-in pages in a browser.

``make test`` sets ``BASTION_REQUIRE_BROWSER`` and installs Chromium; elsewhere the browser
tests skip cleanly when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BASTION_REQUIRE_BROWSER"):
        return
    missing = None
    if not shutil.which(CHROMIUM):
        missing = "Debian's chromium is not installed"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "could not import 'playwright.sync_api'"
    if missing is None:
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.skip(reason=missing))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module."""
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
