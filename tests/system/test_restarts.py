"""Restarts of either side on the real daemon: a new Asterisk, or the daemon stopped, mid-call."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ccshortlink.peers.amipeer import event_name, read_transcript
from tests.support.daemon import ANSWERED_CALL, RunningDaemon, start_peers
from tests.support.smsc_peer import SmscFactory
from tests.support.transcripts import FIXTURES

CUSTOMER = "+8613800138000"
CUT_CALL = "1795460028.0"  # the recorded call's Linkedid


def cut_while_talking() -> tuple[list[bytes], list[bytes]]:
    """Recording 01 in two: up to the customer's BridgeEnter (talking), and the rest."""
    _, frames = read_transcript(ANSWERED_CALL)
    at = max(i for i, frame in enumerate(frames) if event_name(frame) == "BridgeEnter")
    # the instance that takes this call has been up a while (the recording's was 1 s old)
    first = [f.replace(b"Uptime: 1\r\n", b"Uptime: 86400\r\n") for f in frames[:at + 1]]
    return first, frames[at + 1:]


def new_instance_star55(*, fully_booted: bool) -> list[bytes]:
    """Recording 05 (the agent dials *55) from an Asterisk that has just started again."""
    _, frames = read_transcript(FIXTURES / "05-userevent-sendcard.txt")
    if not fully_booted:  # what a user without the `system` read privilege gets; the ids
        # tell instead: the new Asterisk counts channels from 0 again, seconds later
        return [f.replace(b"1795460078.19", b"1795461000.0") for f in frames
                if event_name(f) != "FullyBooted"]
    # Uptime 2 s; the ids alone (counter 19 > 1) would not tell this one from a reconnect
    return [f.replace(b"Uptime: 51\r\n", b"Uptime: 2\r\n") for f in frames]


async def trace(config: Path, query: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccshortlink", "trace", "-c", str(config), "--json", query,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return dict(json.loads(out))


def decisions(story: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in story["events"] if event["kind"] == "decision"]


@pytest.mark.parametrize("fully_booted", [True, False], ids=["fully-booted", "ids-only"])
async def test_pbx_restart_mid_call_then_star55_texts_no_one_and_trace_says_why(
        tmp_path: Path, smsc_factory: SmscFactory, fully_booted: bool) -> None:
    talking, _ = cut_while_talking()
    peers = await start_peers(smsc_factory, talking)
    config = peers.config(tmp_path)
    daemon = await RunningDaemon.start(config)
    try:
        await daemon.wait_event("daemon_ready")
        await peers.ami.wait_for(lambda: peers.ami.frames_sent >= len(talking))
        await asyncio.sleep(0.5)  # the daemon reads them as they come; nothing is logged yet

        # Asterisk crashes and comes back: the call is gone, and the agent dials *55
        await peers.ami.restart(new_instance_star55(fully_booted=fully_booted))
        closed = await daemon.wait_event("call_closed")
        assert closed["trigger"] == "pbx_restart" and closed["linkedid"] == CUT_CALL
        assert closed["reason"] == "the PBX restarted before the call ended"
        assert closed["customer"] == "+86138****8000"
        await daemon.wait_for(lambda: any(
            e.get("trigger") == "feature_code" for e in daemon.named("card_skipped")))
        request = [e for e in daemon.named("card_skipped") if e["trigger"] == "feature_code"]
        assert request[0]["reason"] == "no call for this agent since the PBX restarted"
        await daemon.wait_for(lambda: any(e.get("linkedid") == CUT_CALL
                                          for e in daemon.named("card_skipped")))
        await asyncio.sleep(0.5)  # a wrong SMS would be submitted by now
        assert peers.smsc.messages() == []

        for query in (CUT_CALL, CUSTOMER):
            [decision] = decisions(await trace(config, query))
            assert decision["outcome"] == "skipped" and decision["trigger"] == "pbx_restart"
            assert decision["reason"] == "the PBX restarted before the call ended"
            assert decision["agent"] == "CS1001"
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    assert CUSTOMER[4:] not in daemon.log


async def test_daemon_restarted_mid_call_decides_the_call_from_its_cdr_once(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    talking, rest = cut_while_talking()
    peers = await start_peers(smsc_factory, talking)
    config = peers.config(tmp_path)
    first = await RunningDaemon.start(config)
    try:
        await first.wait_event("daemon_ready")
        await peers.ami.wait_for(lambda: peers.ami.frames_sent >= len(talking))
        await asyncio.sleep(0.5)
    finally:
        assert await first.stop() == 0, first.log[-3000:]
    assert first.named("call_ended") == []

    peers.ami.frames.extend(rest)  # the Hangups and the Cdr, sent to whoever logs in next
    second = await RunningDaemon.start(config)
    try:
        ended = await second.wait_event("call_ended")
        assert ended["decided_from"] == "cdr" and ended["linkedid"] == CUT_CALL
        assert ended["agent_extension"] == "1001" and ended["talk_seconds"] == 2.0
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(CUSTOMER)), timeout=20)
        await peers.ami.wait_for(lambda: peers.ami.frames_sent >= len(talking) + len(rest))
        await asyncio.sleep(0.5)  # a second SMS for the same call would be submitted by now
        [text] = peers.sms_to(CUSTOMER)
        assert "CS1001" in text
        assert len(second.named("call_ended")) == 1
        [decision] = decisions(await trace(config, CUT_CALL))
        assert decision["outcome"] in ("sent", "queued") and decision["agent"] == "CS1001"
    finally:
        code = await second.stop()
        await peers.ami.stop()
    assert code == 0, second.log[-3000:]
