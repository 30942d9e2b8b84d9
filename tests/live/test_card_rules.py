"""The card rules on a real Asterisk: the missed-call SMS after a queue, an agent's call out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.livekit import LiveDesk

pytestmark = pytest.mark.live

HOTLINE = "400-820-8820"


def decisions(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["events"] if e["kind"] == "decision"]


async def test_a_caller_who_gives_up_in_the_queue_gets_the_missed_call_sms(
        live: LiveDesk) -> None:
    customer = "13800138011"
    await live.start_daemon(policy={"missed_call_sms": True}, web={"hotline": HOTLINE})
    await live.phone("1001", "uas_noanswer")
    await live.phone("1002", "uas_noanswer")
    # the queue answers, both phones ring, the caller hangs up after 3 s of waiting
    await live.call(customer, "5001", "uac_hangup", talk_ms=3000)
    [text] = await live.wait_sms(customer)
    assert HOTLINE in text and "https://" not in text, text
    [decision] = decisions(live.trace(customer))
    assert (decision["trigger"], decision["outcome"], decision["agent"]) == \
        ("not_answered", "sent", "")
    assert decision["reason"] == "missed call in queue support (abandoned)"


async def test_an_agents_call_out_is_outbound(live: LiveDesk) -> None:
    customer = "13800138012"
    await live.start_daemon(policy={"directions": ["inbound"]})
    await live.customer_phone()
    await live.call("1001", customer, talk_ms=2000)
    await live.wait_decisions(1)
    assert live.sms_to(customer) == []
    [decision] = decisions(live.trace(customer))
    assert (decision["agent"], decision["outcome"]) == ("CS1001", "skipped")
    assert decision["reason"] == "direction outbound not in [policy] directions"
