"""Debian's Chromium through Playwright (Playwright's own browser download is not used).

Without Chromium the browser tests skip, saying how to get it; with CI=true they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.optional import require

CHROMIUM = os.environ.get("CLARA_ES_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    missing = shutil.which(CHROMIUM) is None
    require("the browser test", f"Chromium not found at {CHROMIUM}: apt-get install chromium "
            "(or set CLARA_ES_CHROMIUM) to run the browser test" if missing else None)


@pytest.fixture
def page() -> Iterator[Any]:
    """A page in a fresh browser context (its own storage, its own network switch)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 420})
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()
