"""Everyday calls through a real Asterisk: which number gets which card, and what trace says."""

from __future__ import annotations

import pytest

from tests.support.livekit import LiveDesk

pytestmark = pytest.mark.live

CUSTOMER = "13800138001"


async def test_direct_answered_call(live: LiveDesk) -> None:
    await live.start_daemon()
    await live.phone("1001")
    await live.call(CUSTOMER, "5000", talk_ms=2000)
    texts = await live.wait_sms(CUSTOMER)
    assert len(texts) == 1 and "王小梅" in texts[0], texts
    trace = live.trace(CUSTOMER)
    print(trace)
