"""The shipped `[ccshortlink-hotline]` dialplan walked against the real daemon process: a
returning caller rings the agent of their card; an opted-out or unknown caller reaches the
queue."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp

from tests.support.daemon import (
    RunningDaemon,
    answered_call,
    assert_no_number_or_secret,
    ccshortlink,
    start_peers,
)
from tests.support.dialplan import SHIPPED, Call, curl_to, read_contexts
from tests.support.smsc_peer import SmscFactory

CUSTOMER = "+8613800138000"
OPTED_OUT = "+8613900139000"
STRANGER = "+8613700137000"


def device_state(device: str, state: str) -> bytes:
    """A DeviceStateChange as Asterisk sends it (tests/fixtures/10-presence.txt)."""
    return (f"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: {device}\r\n"
            f"State: {state}\r\n\r\n").encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_returning_callers_reach_their_agent_through_the_shipped_dialplan(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(0, CUSTOMER)
                              + answered_call(1, OPTED_OUT, extension="1002"))
    port = free_port()
    config = peers.config(tmp_path, web={"listen": f"127.0.0.1:{port}",
                                         "public_url": f"http://127.0.0.1:{port}"},
                          callback={"enabled": True})
    daemon = await RunningDaemon.start(config)
    contexts = read_contexts(SHIPPED.read_text(encoding="utf-8"))

    curl = curl_to(port)
    async def caller(number: str, context: str = "ccshortlink-hotline") -> list[str]:
        call = Call({"CALLERID(num)": number}, curl)
        await call.run(contexts, context)
        return call.did

    polls: list[str] = []

    async def until_available(number: str, available: bool) -> None:
        """The daemon has read the PBX's latest device state (what the JSON lookup says)."""
        url = f"http://127.0.0.1:{port}/api/v1/preferred-agent?number={number[1:]}"
        async with asyncio.timeout(10), aiohttp.ClientSession() as http:
            while True:
                polls.append(number)
                async with http.get(url) as answer:
                    if (await answer.json())["available"] is available:
                        return
                await asyncio.sleep(0.05)

    try:
        await daemon.wait_event("daemon_ready")
        await peers.smsc.wait_for(lambda: len(peers.sms_to(CUSTOMER)) == 1
                                  and len(peers.sms_to(OPTED_OUT)) == 1, timeout=20)
        assert await caller(OPTED_OUT) == ["Dial(PJSIP/1002,20)", "Hangup()"]
        # 1002 takes another call: the caller is not held ringing a busy phone
        await peers.deliver([device_state("SIP/1002", "INUSE")])
        await until_available(OPTED_OUT, False)
        assert await caller(OPTED_OUT) == ["Queue(support)"]
        await peers.deliver([device_state("SIP/1002", "NOT_INUSE")])
        await until_available(OPTED_OUT, True)
        assert await caller(OPTED_OUT) == ["Dial(PJSIP/1002,20)", "Hangup()"]
        assert ccshortlink(config, "opt-out", "add", OPTED_OUT).returncode == 0
        assert await caller(CUSTOMER) == ["Dial(PJSIP/1001,20)", "Hangup()"]
        assert await caller("013800138000", "ccshortlink-hotline-freepbx") == [
            "Dial(PJSIP/1001,20)", "Hangup()"]
        assert await caller(OPTED_OUT) == ["Queue(support)"]
        assert await caller(STRANGER) == ["Queue(support)"]
        assert await caller(STRANGER, "ccshortlink-hotline-freepbx") == [
            "Goto(ext-queues,400,1)"]
    finally:
        assert await daemon.stop() == 0
        await peers.ami.stop()
    assert len(daemon.named("preferred_agent_lookup")) == 8 + len(polls)
    assert_no_number_or_secret(daemon.log, [CUSTOMER, OPTED_OUT, STRANGER])


async def test_with_lookup_without_token_false_the_dialplan_sends_the_token(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(0, CUSTOMER))
    port = free_port()
    token = "hotline-token-0123456789"
    config = peers.config(tmp_path, web={"listen": f"127.0.0.1:{port}", "api_token": token,
                                         "public_url": f"http://127.0.0.1:{port}"},
                          callback={"enabled": True, "lookup_without_token": False})
    daemon = await RunningDaemon.start(config)
    contexts = read_contexts(SHIPPED.read_text(encoding="utf-8"))

    curl = curl_to(port)
    async def caller(**variables: str) -> list[str]:
        call = Call({"CALLERID(num)": CUSTOMER, **variables}, curl)
        await call.run(contexts, "ccshortlink-hotline")
        return call.did

    try:
        await daemon.wait_event("daemon_ready")
        await peers.smsc.wait_for(lambda: len(peers.sms_to(CUSTOMER)) == 1, timeout=20)
        assert await caller() == ["Queue(support)"]  # refused from this box without it
        assert await caller(CCS_API_TOKEN=token) == ["Dial(PJSIP/1001,20)", "Hangup()"]
    finally:
        assert await daemon.stop() == 0
        await peers.ami.stop()
    assert [e["status"] for e in daemon.named("preferred_agent_lookup")] == [200]
    assert len(daemon.named("api_unauthorized")) == 1
    assert token not in daemon.log
