"""Restarts through a real Asterisk: the PBX killed mid-call, the daemon restarted mid-call."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from tests.support.amiadmin import AmiAdmin
from tests.support.livekit import LiveDesk
from tests.support.sipp import Sipp

pytestmark = pytest.mark.live

ZH = ("CS1001", "王小梅")  # agent 1001 in etc/agents.yaml
RESTARTED = "the PBX restarted before the call ended"
CRASHED = "13800138011"  # on the line when the PBX was killed


def names(text: str, agent: tuple[str, str]) -> bool:
    return agent[0] in text and agent[1] in text


def decisions(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["events"] if e["kind"] == "decision"]


def admin_of(live: LiveDesk) -> AmiAdmin:
    """The test's AMI connection to the Asterisk running now (a new one after each start)."""
    assert live.pbx.admin is not None
    return live.pbx.admin


def channel_of(admin: AmiAdmin, number: str) -> str:
    """The channel of the customer calling from `number`, as its BridgeEnter named it."""
    return next(e["Channel"] for e in admin.named("BridgeEnter")
                if e.get("CallerIDNum") == number)


def linkedid_of(admin: AmiAdmin, number: str) -> str:
    """The Linkedid of the call from `number` (the daemon's and trace's name for the call)."""
    return next(e["Linkedid"] for e in admin.named("BridgeEnter")
                if e.get("CallerIDNum") == number)


def nothing_traced(live: LiveDesk, query: str) -> str:
    """What `ccshortlink trace QUERY` says when it has no record of it (it exits 1)."""
    assert live.config is not None
    done = subprocess.run([sys.executable, "-m", "ccshortlink", "trace", query,
                           "-c", str(live.config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    return done.stderr.strip()


async def talking(live: LiveDesk, customer: str, scenario: str = "uac_wait_bye") -> Sipp:
    """`customer` calls 5000 and is answered by 1001: both legs are in the bridge."""
    admin = admin_of(live)
    entered = len(admin.named("BridgeEnter"))
    call = await live.dial(customer, "5000", scenario)
    await admin.wait_event("BridgeEnter", count=entered + 2)
    return call


async def crash_during_a_call(live: LiveDesk) -> None:
    """CRASHED talks with 1001 when Asterisk is killed; it comes back, the daemon logs in."""
    assert live.daemon is not None
    await live.phone("1001")
    call = await talking(live, CRASHED)
    # Asterisk queues each event to every AMI session on its own: the daemon's copy of the
    # bridge may come a moment after the admin session's, and the crash must find the call
    # known as 1001's (once, in a full run, the daemon had not read it yet).
    await asyncio.sleep(1.0)
    await live.pbx.crash()  # SIGKILL: no Hangup, no Cdr for the call it cut
    await call.stop()  # the customer's side of a call that no longer exists
    await live.pbx.start()  # same ports; the daemon reconnects by itself
    await live.daemon_said("ami_connected", count=2)


async def star55(live: LiveDesk) -> None:
    """Agent 1001 dials *55 (a second line): Asterisk answers, raises SendCard, hangs up."""
    call = await live.dial("1001", "*55", "uac_wait_bye")
    assert await call.finished() == 0, f"*55 failed; see {call.messages}"


def the_crashed_call_is_closed(live: LiveDesk) -> None:
    """No card for the cut call, and trace says why: closed when the PBX restarted."""
    assert live.sms_to(CRASHED) == []
    [closed] = decisions(live.trace(CRASHED))
    assert (closed["trigger"], closed["outcome"]) == ("pbx_restart", "skipped"), closed
    assert closed["reason"] == RESTARTED and closed["agent"] == ZH[0]


async def test_pbx_killed_mid_call_then_star55_in_the_next_call_texts_its_customer(
        live: LiveDesk) -> None:
    customer = "13800138012"
    await live.start_daemon()
    await crash_during_a_call(live)
    call = await talking(live, customer)
    await star55(live)
    [text] = await live.wait_sms(customer)
    assert names(text, ZH), text

    # the customer hangs up: the card already went during the call, so none at hangup
    await admin_of(live).action("Hangup", Channel=channel_of(admin_of(live), customer))
    assert await call.finished() == 0
    await live.wait_decisions(3)  # the crashed call's, the *55's and the hangup's
    assert [m.text for m in live.sms_to(customer)] == [text]
    assert [(d["trigger"], d["outcome"], d["agent"], d["reason"])
            for d in decisions(live.trace(customer))] == [
        ("feature_code", "sent", ZH[0], ""),
        ("hangup", "skipped", ZH[0], "card already sent during this call by the agent")]
    the_crashed_call_is_closed(live)


async def test_pbx_killed_mid_call_then_star55_after_the_next_call_texts_its_customer(
        live: LiveDesk) -> None:
    customer = "13800138013"
    # a short call gets no card at hangup here: only the agent's *55 sends one
    await live.start_daemon(policy={"min_talk_seconds": 60})
    await crash_during_a_call(live)
    await live.call(customer, "5000", talk_ms=1000)
    await live.wait_decisions(2)  # the crashed call's, and this call's hangup (too short)
    await star55(live)
    [text] = await live.wait_sms(customer)
    assert names(text, ZH), text
    assert [(d["trigger"], d["outcome"]) for d in decisions(live.trace(customer))] == [
        ("hangup", "skipped"), ("feature_code", "sent")]
    the_crashed_call_is_closed(live)


async def test_daemon_restarted_mid_call_the_customer_gets_one_card(live: LiveDesk) -> None:
    customer = "13800138021"
    admin = admin_of(live)
    first = await live.start_daemon()
    await live.phone("1001", "uas_answer_bye", hold_ms=6000)  # the agent hangs up after 6 s
    call = await talking(live, customer)
    await live.stop_daemon()
    [left] = first.named("calls_in_progress_at_stop")
    assert left["linkedids"] == [linkedid_of(admin, customer)]
    await live.start_daemon()  # it never sees this call's start, only its end and its Cdr
    assert admin.named("Hangup") == [], "the call ended before the daemon was back"
    assert await call.finished() == 0
    [text] = await live.wait_sms(customer)
    assert names(text, ZH), text
    await admin.wait_event("Cdr")
    # the agent's *55 after the call finds its customer; the card went already
    await star55(live)
    await live.wait_decisions(2)
    assert [m.text for m in live.sms_to(customer)] == [text]
    traced = decisions(live.trace(customer))
    assert [(d["trigger"], d["outcome"], d["agent"], d["reason"], d["linkedid"])
            for d in traced] == [
        ("hangup", "sent", ZH[0], "", left["linkedids"][0]),
        ("feature_code", "skipped", ZH[0], "same agent texted this number within 24h",
         left["linkedids"][0])]
    assert traced[0]["talk_seconds"] >= 5  # the Cdr's billable seconds: the whole talk


async def test_daemon_down_when_the_call_ends_sends_nothing_and_says_so_at_stop(
        live: LiveDesk) -> None:
    customer = "13800138022"
    admin = admin_of(live)
    first = await live.start_daemon()
    await live.phone("1001")
    call = await talking(live, customer)
    await live.stop_daemon()
    await admin.action("Hangup", Channel=channel_of(admin, customer))
    assert await call.finished() == 0
    await admin.wait_event("Cdr")  # sent while no daemon listened: gone for good
    await live.start_daemon()
    # the agent's *55 cannot find a call whose end the daemon never saw
    await star55(live)
    [asked] = await live.wait_decisions(1)
    assert (asked["trigger"], asked["reason"]) == ("feature_code", "no recent call for this agent")
    assert live.sms_to(customer) == []
    assert live.smsc.accepted() == []
    # what is left of it: the stop's log line names the call that was still up
    [left] = first.named("calls_in_progress_at_stop")
    assert left["linkedids"] == [linkedid_of(admin, customer)]
    assert "nothing recorded" in nothing_traced(live, customer)
