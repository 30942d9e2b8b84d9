"""`ccshortlink run` with [callback] on, across real sockets: the card's POST /{code}/callback
→ one Originate at the AMI peer (which answers like Asterisk) → the call-back's steps in the
log, `trace` and `stats`; no second card at the npm SMSC; the number never in the log.

These POST the card's form: they need web's route (ccshortlink/web/callback.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from pathlib import Path

import aiohttp

from ccshortlink.peers.originate import device_state
from tests.support.daemon import (
    Peers,
    RunningDaemon,
    answered_call,
    assert_no_number_or_secret,
    ccshortlink,
    start_peers,
)
from tests.support.smsc_peer import SmscFactory

CUSTOMER = "+8613800138000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start(tmp_path: Path, peers: Peers, **callback: object) -> tuple[RunningDaemon, str]:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    config = peers.config(tmp_path, web={"listen": f"127.0.0.1:{port}", "public_url": site,
                                         "hotline": "4008001234"},
                          callback={"enabled": True, **callback})
    daemon = await RunningDaemon.start(config)
    await daemon.wait_event("daemon_ready")
    return daemon, site


def code_of(tmp_path: Path, number: str) -> str:
    with sqlite3.connect(tmp_path / "state" / "ccshortlink.db") as db:
        row = db.execute("SELECT code FROM links WHERE customer_number = ?", (number,)).fetchone()
    assert row is not None, "no link for the number"
    return str(row[0])


async def tap_call_me_back(site: str, code: str) -> int:
    """The card's form, as the customer's browser posts it from the card's own page."""
    async with aiohttp.ClientSession() as http, http.post(
            f"{site}/{code}/callback", allow_redirects=False,
            headers={"Sec-Fetch-Site": "same-origin", "Origin": site}) as response:
        return response.status


async def card_sent(peers: Peers) -> None:
    await peers.smsc.wait_for(lambda: len(peers.sms_to(CUSTOMER)) == 1, timeout=20)


async def test_the_cards_button_rings_the_agent_then_the_customer(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(0, CUSTOMER))
    daemon, site = await start(tmp_path, peers)
    try:
        await card_sent(peers)
        code = code_of(tmp_path, CUSTOMER)
        assert await tap_call_me_back(site, code) == 303
        ended = await daemon.wait_event("callback_ended")
        assert (ended["state"], ended["talk_seconds"]) == ("done", 1)
        [originate] = peers.ami.actions_named("Originate")
        assert (originate["Channel"], originate["Context"], originate["Exten"],
                originate["CallerID"]) == ("PJSIP/1001", "from-internal", "13800138000",
                                           "4008001234")
        assert originate["ActionID"] == f"ccs-cb-{ended['callback_id']}"
        await asyncio.sleep(1.0)  # a card wrongly decided for the call-back would be here
        assert len(peers.sms_to(CUSTOMER)) == 1
        assert daemon.named("callback_call_ended")  # the tracker saw it, and let it be
        # The hotline's lookup (as the dialplan's CURL() asks it, the number as the PBX shows
        # it): the agent of the link, free again after the call-back
        async with aiohttp.ClientSession() as http:
            lookup = f"{site}/api/v1/preferred-agent"
            async with http.get(lookup, params={"number": "13800138000"}) as response:
                assert await response.json() == {"extension": "1001", "agent_id": "CS1001",
                                                 "available": True}
            async with http.get(lookup, params={"number": "13900000000",
                                                "format": "text"}) as response:
                assert (response.status, await response.text()) == (200, "")
    finally:
        assert await daemon.stop() == 0
        await peers.ami.stop()
    assert_no_number_or_secret(daemon.log, [CUSTOMER])
    config = tmp_path / "ccshortlink.toml"
    trace = ccshortlink(config, "trace", CUSTOMER)
    assert f"[link {code}] → done, talk 1s" in trace.stdout, trace.stdout
    stats = json.loads(ccshortlink(config, "stats", "--json").stdout)
    assert stats["periods"][0]["agents"]["CS1001"]["callbacks_connected"] == 1


async def test_a_busy_agents_call_back_waits_and_outlives_a_restart(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(0, CUSTOMER))
    daemon, site = await start(tmp_path, peers)
    try:
        await card_sent(peers)
        await peers.ami.send_event(device_state("PJSIP/1001", "INUSE"))
        code = code_of(tmp_path, CUSTOMER)
        assert await tap_call_me_back(site, code) == 303
        await daemon.wait_event("callback_requested")
        await asyncio.sleep(1.5)  # the dispatcher looks at least once a second
        assert peers.ami.actions_named("Originate") == []
    finally:
        assert await daemon.stop() == 0
    daemon, site = await start(tmp_path, peers)  # nothing known of 1001 yet: placed at once
    try:
        await daemon.wait_event("callback_placed")
        assert len(peers.ami.actions_named("Originate")) == 1
        assert (await daemon.wait_event("callback_ended"))["state"] == "done"
    finally:
        assert await daemon.stop() == 0
        await peers.ami.stop()


async def test_free_again_then_placed_and_outside_hours_refused(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(0, CUSTOMER))
    daemon, site = await start(tmp_path, peers, per_link_per_day=1)
    try:
        await card_sent(peers)
        await peers.ami.send_event(device_state("PJSIP/1001", "RINGING"))
        code = code_of(tmp_path, CUSTOMER)
        assert await tap_call_me_back(site, code) == 303
        await asyncio.sleep(1.2)
        assert peers.ami.actions_named("Originate") == []
        await peers.ami.send_event(device_state("PJSIP/1001", "NOT_INUSE"))
        await daemon.wait_event("callback_placed")
        await daemon.wait_event("callback_ended")
        assert await tap_call_me_back(site, code) == 303  # the per-link limit: refused
        refused = await daemon.wait_event("callback_refused")
        assert refused["reason"] == "link_limit"
        assert len(peers.ami.actions_named("Originate")) == 1
    finally:
        assert await daemon.stop() == 0
        await peers.ami.stop()
