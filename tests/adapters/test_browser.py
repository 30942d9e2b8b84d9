"""The card in a real headless Chromium at a phone viewport, served over real loopback HTTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from ccshortlink.store import Store
from tests.support.cardkit import Site, build_site, issue, write_agents
from tests.support.pgkit import peek_db

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output"
CODE = "Kd7mPq2xZ9"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; CI must install it (scripts/install-system-deps)",
                    pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)


@dataclass
class Served:
    site: Site
    base: str


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with await Store.open(tmp_path / "ccshortlink.db") as store:
        site = build_site(store, write_agents(tmp_path))
        await issue(site.store, site.clock, CODE)
        runner = web.AppRunner(site.app)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        try:
            port = runner.addresses[0][1]
            yield Served(site=site, base=f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()


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


def visits(site: Site, kind: str) -> int:
    with peek_db(site.store) as db:
        return int(db.execute("SELECT COUNT(*) FROM visits WHERE kind = ?", (kind,)).fetchone()[0])


async def open_card(browser: Browser, url: str, *, java_script_enabled: bool = True,
                    locale: str = "zh-CN") -> tuple[Page, list[str]]:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
        has_touch=True, locale=locale, java_script_enabled=java_script_enabled)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return page, problems


async def test_card_on_a_phone(served: Served, browser: Browser) -> None:
    page, problems = await open_card(browser, f"{served.base}/{CODE}")
    assert await page.get_by_role("heading", name="王芳").is_visible()
    assert await page.get_by_text("CS1001").is_visible()
    call = page.locator("a.call")
    assert await call.get_attribute("href") == "tel:+862088880000,,1001"
    box = await call.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 200
    # every touch target: buttons, links, stars, the comment box
    for target in await page.locator("a, button, .rate label, textarea").all():
        size = await target.bounding_box()
        assert size is not None and size["height"] >= 44 and size["width"] >= 44, \
            await target.inner_text()
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"horizontal scroll: {widths}"
    avatar_loaded = await page.evaluate(
        "(() => { const i = document.querySelector('.avatar img');"
        " return i.complete && i.naturalWidth > 0; })()")
    assert avatar_loaded
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "card.png"), full_page=True)
    assert problems == []  # no console errors, no CSP violations
    assert visits(served.site, "open") == 1


async def test_rating_through_the_form_without_javascript(served: Served,
                                                          browser: Browser) -> None:
    page, problems = await open_card(browser, f"{served.base}/{CODE}", java_script_enabled=False)
    assert await page.locator(".stats b").first.inner_text() == "4.8"
    await page.locator("label[for=s1]").click()
    await page.locator("#comment").fill("等待时间太长了")
    async with page.expect_navigation():
        await page.get_by_role("button", name="提交评价").click()
    assert page.url.endswith(f"/{CODE}?rated=1#rate")
    assert await page.get_by_text("感谢您的评价！").is_visible()
    # (4.8 * 120 + 1) / 121 = 4.77 -> 4.8 would hide the change; check votes and the review
    assert await page.get_by_text("121 人评价").is_visible()
    assert await page.get_by_text("等待时间太长了", exact=True).first.is_visible()
    assert await page.locator("#s1").is_checked()
    assert problems == []


async def test_changing_the_rating_moves_the_average(served: Served, browser: Browser) -> None:
    await issue(served.site.store, served.site.clock, "English234", agent_id="CS2002")
    # an English-speaking visitor: the labels follow the browser's language
    page, problems = await open_card(browser, f"{served.base}/English234", locale="en-US")
    assert await page.locator(".stats b").first.inner_text() == "5.0"
    for stars, average in (("1", "4.0"), ("3", "4.5")):  # (15 + 1) / 4, then (15 + 3) / 4
        await page.locator(f"label[for=s{stars}]").click()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Send rating").click()
        assert await page.locator(".stats b").first.inner_text() == average
        assert await page.get_by_text("4 ratings").is_visible()
    assert problems == []


async def test_call_button_tap_is_counted_by_the_browser_ping(served: Served,
                                                              browser: Browser) -> None:
    page, _ = await open_card(browser, f"{served.base}/{CODE}", java_script_enabled=False)
    await page.locator("a.call").click(no_wait_after=True)
    for _ in range(100):  # the ping is sent in the background: wait up to 10 s for it
        if visits(served.site, "call") == 1:
            break
        await asyncio.sleep(0.1)
    assert visits(served.site, "call") == 1


async def test_a_link_revoked_over_the_api_shows_the_hotline_page(served: Served,
                                                                 browser: Browser) -> None:
    page, problems = await open_card(browser, f"{served.base}/{CODE}")
    assert await page.get_by_role("heading", name="王芳").is_visible()
    async with aiohttp.ClientSession() as http, http.delete(
            f"{served.base}/api/v1/links/{CODE}",
            headers={"Authorization": "Bearer s3cret-token"}) as revoked:
        assert revoked.status == 200
    response = await page.reload()
    assert response is not None and response.status == 410
    assert await page.get_by_role("heading", name="链接已失效").is_visible()
    hotline = page.locator("a.call")
    assert await hotline.get_attribute("href") == "tel:400-820-8820"
    box = await hotline.bounding_box()
    assert box is not None and box["height"] >= 44
    assert await page.get_by_text("王芳").count() == 0
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "revoked.png"), full_page=True)
    # Chromium reports the 410 itself on the console; nothing else (no CSP violation)
    assert [p for p in problems if "status of 410 (Gone)" not in p] == []
