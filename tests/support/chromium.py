"""The headless Chromium the browser tests drive: Debian's `chromium`, as CI installs it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> None:
    """At a browser test module's top: skipped without Chromium, but a failure under CI,
    whose own install step must have put it there."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; CI must install it (scripts/install-system-deps)",
                    pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield launched
        finally:
            await launched.close()
