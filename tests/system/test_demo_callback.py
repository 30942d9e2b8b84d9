"""`ccshortlink demo` end to end with [callback] on: the real daemon, its embedded AMI peer and
SMS sink, and a real Chromium tapping "call me back" on the card the SMS links to."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.support.chromium import require_chromium

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output"

require_chromium()


class Demo:
    """`ccshortlink demo` as a process, its output read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output = ""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.output += line.decode("utf-8", "replace")

    async def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        async with asyncio.timeout(timeout):
            while (found := re.search(pattern, self.output)) is None:
                if self.process.returncode is not None:
                    raise AssertionError(f"the demo exited:\n{self.output[-3000:]}")
                await asyncio.sleep(0.05)
        return found

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return code


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccshortlink", "demo", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    started = Demo(process)
    try:
        yield started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_tap_call_me_back_on_the_demos_card(demo: Demo, browser: Browser) -> None:
    card = (await demo.wait_for(r"Open the agent's card:  (http://127\.0\.0\.1:\d+/\w+)"))[1]
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                        locale="zh-CN", java_script_enabled=False)
    page = await context.new_page()
    await page.goto(card)
    assert "Originate received" not in demo.output  # nothing is placed before the customer asks
    async with page.expect_navigation():
        await page.get_by_role("button", name="请客服回电给我").click()
    assert page.url == f"{card}?callback=1#callback"
    # The daemon sent one Originate to the demo's PBX, which printed it (the number masked)
    originate = (await demo.wait_for(r"(?s)┌─ Originate received by the demo PBX.*?\n└─", 10))[0]
    for line in ("│ Channel: PJSIP/1001", "│ Context: from-internal", "│ Exten: 138****8000",
                 "│ Priority: 1", "│ CallerID: +86 400 800 8888", "│ Timeout: 30000",
                 "│ ActionID: ccs-cb-1", "│ Variable: CCS_CALLBACK=1"):
        assert line in originate
    assert demo.output.count("Originate received") == 1
    # While the PBX rings the agent and then the customer, the card says so.
    assert await page.get_by_text(re.compile("正在给您回电|已接通")).is_visible()
    # The demo's call: they talk for 5 s, the customer hangs up; the page refreshes by itself.
    await page.get_by_text("已为您回电，通话 1 分钟").wait_for(timeout=30_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "demo-callback.png"), full_page=True)
    assert await page.get_by_role("button", name="请客服回电给我").is_visible()
    html = await page.content()
    assert await demo.stop() == 0
    for number in ("8613800138000", "13800138000"):
        assert number not in html and number not in demo.output
    for event in ('"callback_tapped"', '"callback_placed"', '"callback_agent_answered"',
                  '"callback_connected"', '"callback_ended"'):
        assert event in demo.output
    # the call-back's own call sent no second card
    assert demo.output.count("SMS received by the demo SMSC") == 1
