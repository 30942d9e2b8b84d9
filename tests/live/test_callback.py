"""Call-backs and returning callers through a real Asterisk: the card's button rings the agent,
then the customer; a busy agent's call-back waits for the call to end; the hotline rings the
agent of the caller's card first."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.support.amiadmin import AmiAdmin
from tests.support.daemon import assert_no_number_or_secret
from tests.support.livekit import LiveDesk

# Every test here: the daemon's AMI user may originate, 5008 runs the shipped hotline dialplan.
pytestmark = [pytest.mark.live,
              pytest.mark.parametrize("live", [{"callback": True}], indirect=True,
                                      ids=["callbacks on"])]

# What a chan_sip PBX needs beyond `enabled`: the agents' phones are SIP/<extension>; the
# customer's national number is dialled out from [from-internal] (the documented default).
CALLBACK: dict[str, object] = {"enabled": True, "agent_channel": "SIP/{extension}",
            "customer_context": "from-internal"}
WEB: dict[str, object] = {"hotline": "4008008888"}  # the caller ID the customer sees on a call-back
SAME_ORIGIN = {"Sec_Fetch_Site": "same-origin"}  # what a browser sends from the card's form


def admin_of(live: LiveDesk) -> AmiAdmin:
    assert live.pbx.admin is not None
    return live.pbx.admin


def code_in(text: str) -> str:
    match = re.search(r"https://cs\.example\.com/([A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)


async def card_of(live: LiveDesk, customer: str) -> str:
    """A real call 5000 → agent 1001, answered: the customer's card, its link's code."""
    await live.call(customer, "5000", talk_ms=1500)
    [text] = await live.wait_sms(customer)
    return code_in(text)


async def tap(live: LiveDesk, code: str) -> dict[str, Any]:
    """"Call me back" on the card: the 303 back to the card, and what the daemon made of it."""
    assert live.daemon is not None
    tapped = len(live.daemon.named("callback_tapped"))
    status, headers = await live.post(f"/{code}/callback", **SAME_ORIGIN)
    assert status == 303 and headers["location"].startswith(f"../{code}?"), (status, headers)
    return await live.daemon.wait_event("callback_tapped", tapped + 1)


def dialled_from(admin: AmiAdmin, channel_prefix: str) -> list[str]:
    """The channels that a channel named `channel_prefix…` dialled (DialBegin), in order."""
    return [e["DestChannel"] for e in admin.named("DialBegin")
            if e.get("Channel", "").startswith(channel_prefix)]


def originated(admin: AmiAdmin) -> list[str]:
    """Agent channels the PBX rang for an Originate (a DialBegin with no calling channel)."""
    return [e["DestChannel"] for e in admin.named("DialBegin") if "Channel" not in e]


def position(admin: AmiAdmin, event: str, **fields: str) -> int:
    """Where the first such event came in the PBX's stream."""
    return admin.events.index(admin.named(event, **fields)[0])


def callbacks_traced(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """`trace NUMBER`'s lines about call-backs: each step of each, and how it ended."""
    return [e for e in trace["events"] if str(e["kind"]).startswith("callback_")]


async def test_call_me_back_rings_the_agent_then_the_customer_and_sends_no_second_card(
        live: LiveDesk) -> None:
    customer = "13800138031"
    daemon = await live.start_daemon(callback=CALLBACK, web=WEB)
    await live.phone("1001")
    code = await card_of(live, customer)
    await live.customer_phone("uas_answer_bye", hold_ms=2000)  # answers, talks 2 s, hangs up
    tapped = await tap(live, code)
    assert tapped["outcome"] in ("calling_agent", "waiting"), tapped  # placed at once: 1001 free
    ended = await daemon.wait_event("callback_ended", timeout=30)
    assert ended["state"] == "done" and ended["talk_seconds"] >= 1, ended
    admin = admin_of(live)
    # the PBX rang 1001's phone, and from that call dialled the customer out through the trunk
    [agent_leg] = originated(admin)
    assert agent_leg.startswith("SIP/1001-"), agent_leg
    [customer_leg] = dialled_from(admin, agent_leg)
    assert customer_leg.startswith("SIP/customer-trunk-"), customer_leg
    assert [e["DialStatus"] for e in admin.named("DialEnd", DestChannel=customer_leg)] == [
        "ANSWER"]
    # the call-back's own call is seen to its end and gets no card: the customer has the link
    await live.daemon_said("callback_call_ended")
    assert [d["event"] for d in live.decisions()] == ["card_queued"]
    assert len(live.sms_to(customer)) == 1
    # the operator sees it: asked, placed, agent answered, customer answered, the talk time
    steps = callbacks_traced(live.trace(customer))
    assert {e["kind"] for e in steps} == {
        "callback_requested", "callback_placed", "callback_agent_answered",
        "callback_connected", "callback_ended"}, steps
    [traced] = [e for e in steps if e["kind"] == "callback_ended"]
    assert (traced["outcome"], traced["agent"], traced["code"]) == ("done", "CS1001", code)
    assert traced["talk_seconds"] >= 1, traced
    assert_no_number_or_secret(daemon.log, [customer])


async def test_a_busy_agents_call_back_waits_for_the_call_to_end(live: LiveDesk) -> None:
    customer, other = "13800138032", "13800138042"
    daemon = await live.start_daemon(callback=CALLBACK, web=WEB)
    await live.phone("1001")
    code = await card_of(live, customer)
    await live.customer_phone("uas_answer_bye", hold_ms=1500)
    admin = admin_of(live)
    entered = len(admin.named("BridgeEnter"))
    busy = await live.dial(other, "5000", talk_ms=5000)  # 1001 on a call with someone else
    await admin.wait_event("BridgeEnter", entered + 2)
    # the PBX told the daemon "in use" at the answer, as it told us; a second for a loaded box
    await asyncio.sleep(1.0)
    tapped = await tap(live, code)
    assert tapped["outcome"] == "waiting", tapped
    assert await busy.finished() == 0
    # the other call ended: 1001 is free, the call-back is placed and goes through
    placed = await daemon.wait_event("callback_placed", timeout=15)
    assert placed["agent_id"] == "CS1001", placed
    ended = await daemon.wait_event("callback_ended", timeout=30)
    assert ended["state"] == "done", ended
    [agent_leg] = originated(admin)
    assert agent_leg.startswith("SIP/1001-"), agent_leg
    # and not before: the PBX rang 1001 for it only after 1001's leg of the other call hung up
    [busy_leg] = [e["DestChannel"] for e in admin.named("DialBegin", CallerIDNum=other)]
    assert position(admin, "Hangup", Channel=busy_leg) < position(
        admin, "DialBegin", DestChannel=agent_leg)


async def test_a_returning_caller_reaches_their_agent_first_an_unknown_caller_the_queue(
        live: LiveDesk) -> None:
    known, unknown = "13800138033", "13800138043"
    await live.start_daemon(callback=CALLBACK, web=WEB)
    await live.phone("1001")
    await live.phone("1002")  # both answer: a queue call would ring both (ring-all)
    await card_of(live, known)  # the known caller's card names 1001
    admin = admin_of(live)
    await live.call(known, "5008")  # calls the hotline again
    await live.call(unknown, "5008")  # never had a card
    hotline_dials = [(e.get("CallerIDNum"), e["DestChannel"]) for e in admin.named("DialBegin")
                     if e.get("Context") == "ccshortlink-hotline"]
    from_known = [dest for number, dest in hotline_dials if number == known]
    assert from_known and all(d.startswith("SIP/1001-") for d in from_known), hotline_dials
    queued = {e.get("CallerIDNum") for e in admin.named("QueueCallerJoin")}
    assert known not in queued and unknown in queued, queued
