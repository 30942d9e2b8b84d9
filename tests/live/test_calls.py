"""Everyday calls through a real Asterisk: which number gets which card, and what trace says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.livekit import LiveDesk

pytestmark = pytest.mark.live

ZH, EN = ("CS1001", "王小梅"), ("CS1002", "Daniel Chen")  # agents 1001 and 1002 in etc/agents.yaml


def names(text: str, agent: tuple[str, str]) -> bool:
    return agent[0] in text and agent[1] in text


def decisions(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["events"] if e["kind"] == "decision"]


SIGNATURES = {"zh-CN": "【云客服】", "en": "[CloudCS]"}  # as a mainland sender registers them


@pytest.mark.parametrize(("dialled", "agent", "language"),
                         [("5000", ZH, "zh-CN"), ("5002", EN, "en")],
                         ids=["zh-CN agent", "en agent"])
async def test_direct_answered_call_gets_one_signed_card_in_one_part(
        live: LiveDesk, dialled: str, agent: tuple[str, str], language: str) -> None:
    customer = "13800138001"
    await live.start_daemon(sms={"signature": SIGNATURES})
    await live.phone("1001" if agent is ZH else "1002")
    await live.call(customer, dialled, talk_ms=2000)
    [text] = await live.wait_sms(customer)
    assert names(text, agent), text
    assert text.startswith(SIGNATURES[language]) and "https://cs.example.com/" in text
    assert text.endswith("回TD退订" if language == "zh-CN" else "Reply STOP to opt out"), text
    # the shipped default text, signed, with a real link and the opt-out hint: one SMS part
    [sms] = live.sms_to(customer)
    assert sms.total == 1 and len(sms.parts) == 1, (sms.total, text)
    [decision] = decisions(live.trace(customer))
    assert decision["trigger"] == "hangup" and decision["outcome"] == "sent"
    assert decision["agent"] == agent[0] and decision["talk_seconds"] >= 1.5


@pytest.mark.parametrize("dialled", ["5001", "5004"], ids=["SIP members", "Local/…/n members"])
async def test_queue_call_card_names_the_member_who_answered(live: LiveDesk, dialled: str) -> None:
    customer = "13800138002"
    await live.start_daemon()
    # ring-all queue: both phones ring, 1002 answers first, 1001 is cancelled
    await live.phone("1001", "uas_noanswer")
    await live.phone("1002", ring_ms=300)
    await live.call(customer, dialled, talk_ms=2000)
    [text] = await live.wait_sms(customer)
    assert names(text, EN) and ZH[0] not in text, text
    [decision] = decisions(live.trace(customer))
    assert decision["agent"] == EN[0] and decision["outcome"] == "sent"


async def test_unanswered_call_gets_no_sms_and_is_in_trace(live: LiveDesk) -> None:
    customer = "13800138003"
    await live.start_daemon()
    await live.phone("1001", "uas_noanswer")
    await live.call(customer, "5000", "uac_cancel", talk_ms=1500)  # gives up after 1.5 s ringing
    await live.daemon_said("call_closed")
    assert live.sms_to(customer) == []
    [decision] = decisions(live.trace(customer))
    assert decision["trigger"] == "not_answered" and decision["outcome"] == "skipped"
    assert live.smsc.accepted() == []


async def test_busy_agent_gives_no_sms(live: LiveDesk) -> None:
    customer = "13800138004"
    await live.start_daemon()
    await live.phone("1001", "uas_busy")
    await live.call(customer, "5000", "uac_rejected")
    await live.daemon_said("call_closed")
    assert live.smsc.accepted() == []


async def test_star55_after_a_call_sends_the_card_to_that_calls_customer(live: LiveDesk) -> None:
    customer = "13800138005"
    # a short call gets no card at hangup here: the agent decides, with *55
    await live.start_daemon(policy={"min_talk_seconds": 60})
    await live.phone("1001")
    await live.call(customer, "5000", talk_ms=1000)
    [skipped] = await live.wait_decisions(1)
    assert skipped["event"] == "card_skipped"
    await live.call("1001", "*55", "uac_wait_bye")  # the PBX answers, beeps and hangs up
    [text] = await live.wait_sms(customer)
    assert names(text, ZH), text
    trace = decisions(live.trace(customer))
    assert [(d["trigger"], d["outcome"]) for d in trace] == [
        ("hangup", "skipped"), ("feature_code", "sent")]


async def test_star55_with_a_number_sends_the_card_there(live: LiveDesk) -> None:
    asked = "13900139006"  # a customer who asked on another channel
    await live.start_daemon()
    await live.call("1002", f"*55{asked}", "uac_wait_bye")
    [text] = await live.wait_sms(asked)
    assert names(text, EN), text
    [decision] = decisions(live.trace(asked))
    assert decision["trigger"] == "feature_code" and decision["agent"] == EN[0]


async def test_blind_transfer_card_names_the_final_agent(live: LiveDesk) -> None:
    customer = "13800138007"
    await live.start_daemon()
    await live.phone("1001")
    await live.phone("1002", "uas_answer_bye", hold_ms=2000)  # talks 2 s, then hangs up
    call = await live.dial(customer, "5000", "uac_wait_bye")
    admin = live.pbx.admin
    assert admin is not None
    await admin.wait_event("BridgeEnter", count=2)  # the customer and 1001 talk
    agent_leg = next(e["Channel"] for e in admin.named("BridgeEnter")
                     if e["Channel"].startswith("SIP/1001-"))
    await asyncio.sleep(1.0)  # 1001's share of the talk
    # 1001 sends the customer on to 1002 (what #1 1002 does on a desk phone)
    done = await admin.action("BlindTransfer", Channel=agent_leg, Context="transfer-targets",
                              Exten="1002")
    assert done.get("Response") == "Success", done
    assert await call.finished() == 0  # 1002 hung up on the customer
    [decision] = await live.wait_decisions(1)
    texts = await live.wait_sms(customer)
    assert len(texts) == 1 and names(texts[0], EN) and ZH[0] not in texts[0], texts
    assert decision["agent"] == EN[0]
    [traced] = decisions(live.trace(customer))
    assert traced["agent_extension"] == "1002" and traced["talk_seconds"] >= 1.5
