"""The shipped `[ccshortlink-hotline]` dialplan walked against the real daemon process: a
returning caller rings the agent of their card; an opted-out or unknown caller reaches the
queue."""

from __future__ import annotations

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
from tests.support.dialplan import SHIPPED, Call, read_contexts
from tests.support.smsc_peer import SmscFactory

CUSTOMER = "+8613800138000"
OPTED_OUT = "+8613900139000"
STRANGER = "+8613700137000"


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

    async def curl(url: str) -> str:
        async with aiohttp.ClientSession() as http, http.get(
                url.replace("127.0.0.1:8080", f"127.0.0.1:{port}")) as answer:
            return await answer.text()

    async def caller(number: str, context: str = "ccshortlink-hotline") -> list[str]:
        call = Call({"CALLERID(num)": number}, curl)
        await call.run(contexts, context)
        return call.did

    try:
        await daemon.wait_event("daemon_ready")
        await peers.smsc.wait_for(lambda: len(peers.sms_to(CUSTOMER)) == 1
                                  and len(peers.sms_to(OPTED_OUT)) == 1, timeout=20)
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
    assert len(daemon.named("preferred_agent_lookup")) == 6
    assert_no_number_or_secret(daemon.log, [CUSTOMER, OPTED_OUT, STRANGER])
