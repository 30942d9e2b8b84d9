"""The card in a real headless Chromium at a phone viewport, served over real loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web
from playwright.async_api import Browser, Page

from ccshortlink.core.vocab import CallbackState, Presence
from ccshortlink.store import Store
from ccshortlink.web.context import DEPS
from tests.support.cardkit import Site, build_desk_site, build_site, issue, write_agents
from tests.support.chromium import require_chromium
from tests.support.fakedesk import FakeDesk
from tests.support.pgkit import peek_db

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output"
CODE = "Kd7mPq2xZ9"

require_chromium()


@dataclass
class Served:
    site: Site
    base: str
    desk: FakeDesk | None = None


@asynccontextmanager
async def serving(tmp_path: Path, *, with_callbacks: bool = False) -> AsyncIterator[Served]:
    """The card site on a real loopback port; `with_callbacks`: [callback] on, a fake desk."""
    async with await Store.open(tmp_path / "ccshortlink.db") as store:
        agents = write_agents(tmp_path)
        site, desk = (build_desk_site(store, agents) if with_callbacks
                      else (build_site(store, agents), None))
        await issue(site.store, site.clock, CODE)
        runner = web.AppRunner(site.app)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        try:
            port = runner.addresses[0][1]
            yield Served(site=site, base=f"http://127.0.0.1:{port}",
                         desk=desk)
        finally:
            await runner.cleanup()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as started:
        yield started


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
    assert await page.locator("form#callback").count() == 0  # [callback] is off
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


async def test_call_me_back_from_the_card(tmp_path: Path, browser: Browser) -> None:
    async with serving(tmp_path, with_callbacks=True) as served:
        desk = served.desk
        assert desk is not None
        desk.presences["CS1001"] = Presence.FREE
        page, problems = await open_card(browser, f"{served.base}/{CODE}",
                                         java_script_enabled=False)
        assert await page.get_by_text("客服现在有空").is_visible()
        assert await page.locator("a.call").get_attribute("href") == "tel:+862088880000,,1001"
        button = page.get_by_role("button", name="请客服回电给我")
        box = await button.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 200
        SCREENSHOTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "callback-offered.png"))
        with structlog.testing.capture_logs() as logged:
            async with page.expect_response(lambda r: r.request.method == "POST") as posted:
                await button.click()
            await page.wait_for_url(f"**/{CODE}?callback=1#callback")
        tap = await posted.value
        assert tap.status == 303 and tap.headers["location"] == f"../{CODE}?callback=1#callback"
        assert desk.requests == [CODE]
        assert [e["code"] for e in logged if e["event"] == "callback_tapped"] == [CODE]
        assert await page.get_by_text("正在给您回电，请留意来电").is_visible()
        assert await page.get_by_role("button", name="请客服回电给我").count() == 0
        await page.screenshot(path=str(SCREENSHOTS / "callback.png"), full_page=True)
        # They talked for three minutes: the page looks again by itself, without script.
        desk.presences["CS1001"] = Presence.BUSY
        desk.set_state(CODE, CallbackState.DONE, talk_seconds=180)
        await page.get_by_text("已为您回电，通话 3 分钟").wait_for(timeout=10_000)
        assert await page.get_by_text("客服正在通话").is_visible()
        assert await page.get_by_role("button", name="请客服回电给我").is_visible()
        html = await page.content()
        for form in ("+8613800138000", "8613800138000", "13800138000"):
            assert form not in html and form not in str(logged)
        await served.site.app[DEPS].visits.flush()
        assert visits(served.site, "open") == 1  # the redirect and the refresh are one visit
        assert problems == []


async def test_another_site_cannot_ask_for_a_call_back(tmp_path: Path, browser: Browser) -> None:
    async with serving(tmp_path, with_callbacks=True) as served:
        form = (f'<form method="post" action="{served.base}/{CODE}/callback">'
                '<button>Win a prize</button></form>')

        async def bait(_: web.Request) -> web.Response:
            return web.Response(text=form, content_type="text/html")

        lure = web.Application()
        lure.router.add_get("/", bait)
        runner = web.AppRunner(lure)
        await runner.setup()
        await web.TCPSite(runner, "localhost", 0).start()
        try:
            port = runner.addresses[0][1]
            context = await browser.new_context(java_script_enabled=False)
            page = await context.new_page()
            await page.goto(f"http://localhost:{port}/")
            async with page.expect_response(lambda r: r.request.method == "POST") as posted:
                await page.get_by_role("button", name="Win a prize").click()
            assert (await posted.value).status == 403
        finally:
            await runner.cleanup()
        assert served.desk is not None and served.desk.requests == []
