"""Call-backs through the wired daemon (in-process), its desk asked as the card's route asks
it: the AMI peer answers the Originate like Asterisk, the npm SMSC counts the cards."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client import generate_latest

from ccshortlink.core.vocab import CallbackState
from ccshortlink.peers.originate import CallScript, device_state
from tests.support.callbackdaemon import (
    CUSTOMER,
    OTHER,
    cards_sent,
    code_of,
    daemon_with,
    decisions,
    desk,
    peer_with,
    state_of,
    until,
)
from tests.support.daemon import ccshortlink
from tests.support.smsc_peer import SmscFactory


async def test_a_call_back_rings_the_agent_then_the_customer_and_sends_no_second_card(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    async with peer, daemon_with(tmp_path, smsc, peer, customer_exten="0{national}") as daemon:
        await cards_sent(smsc, 1)
        code = code_of(tmp_path, CUSTOMER)
        view = await desk(daemon).request(code)
        assert view is not None and view.state == CallbackState.WAITING
        await until(lambda: peer.actions_named("Originate"))
        [originate] = peer.actions_named("Originate")
        assert {k: originate[k] for k in ("Channel", "Context", "Exten", "CallerID", "Timeout",
                                          "ActionID", "Async", "Variable")} == {
            "Channel": "PJSIP/1001", "Context": "from-internal", "Exten": "013800138000",
            "CallerID": "4008001234", "Timeout": "30000", "ActionID": f"ccs-cb-{view.id}",
            "Async": "true", "Variable": f"CCS_CALLBACK={view.id}"}
        done = await state_of(daemon, code, CallbackState.DONE)
        assert done.talk_seconds == 1  # the peer talks 1 s from the customer's answer
        again = await desk(daemon).request(code)  # a new one: the last has ended
        assert again is not None and again.id != view.id
        await state_of(daemon, code, CallbackState.DONE)
        await asyncio.sleep(1.0)  # a wrongly decided card would be at the SMSC by now
        assert len([m for m in smsc.messages() if m.complete]) == 1
        assert await decisions(daemon) == 1  # not even one skipped for the resend window
        assert await desk(daemon).request("NoSuchCode") is None
        metrics = generate_latest(daemon.metrics.registry).decode()
        assert 'ccshortlink_callbacks_total{outcome="done"} 2.0' in metrics
        assert "ccshortlink_callbacks_waiting 0.0" in metrics
        config = daemon.config.path
    trace = await asyncio.to_thread(ccshortlink, config, "trace", CUSTOMER)
    assert trace.returncode == 0, trace.stderr
    steps = [line.split("  ", 1)[1].split()[0:2] for line in trace.stdout.splitlines()
             if "  c" in line and ("call-back" in line or "cb " in line)]
    assert [" ".join(s) for s in steps][:5] == [
        "call-back #1", "cb placed", "cb agent", "cb connected", "cb ended"]
    assert f"#{view.id} for CS1001 [link {code}] → done, talk 1s" in trace.stdout
    as_json = json.loads((await asyncio.to_thread(
        ccshortlink, config, "trace", CUSTOMER, "--json")).stdout)
    ended = [e for e in as_json["events"] if e["kind"] == "callback_ended"]
    assert [(e["outcome"], e["talk_seconds"]) for e in ended] == [("done", 1), ("done", 1)]
    stats = json.loads((await asyncio.to_thread(ccshortlink, config, "stats", "--json")).stdout)
    today = stats["periods"][0]
    assert today["all"]["callbacks_connected"] == 2 and today["all"]["called_back"] == 0
    assert today["agents"]["CS1001"]["callbacks_connected"] == 2
    text = (await asyncio.to_thread(ccshortlink, config, "stats")).stdout
    header = next(line for line in text.splitlines() if "call taps" in line)
    assert "called back" in header, header


async def test_a_busy_agent_is_called_back_once_free(tmp_path: Path,
                                                   smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    async with peer, daemon_with(tmp_path, smsc, peer) as daemon:
        await cards_sent(smsc, 1)
        await peer.send_event(device_state("PJSIP/1001", "INUSE"))
        await until(lambda: desk(daemon).presence("CS1001") == "busy")
        code = code_of(tmp_path, CUSTOMER)
        view = await desk(daemon).request(code)
        assert view is not None and view.state == CallbackState.WAITING
        await asyncio.sleep(1.5)  # the dispatcher looks at least once a second
        assert peer.actions_named("Originate") == []
        assert (await desk(daemon).request(code)).id == view.id  # type: ignore[union-attr]
        await peer.send_event(device_state("PJSIP/1001", "NOT_INUSE"))
        await until(lambda: peer.actions_named("Originate"))
        await state_of(daemon, code, CallbackState.DONE)


async def test_who_does_not_answer(tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    async with peer, daemon_with(tmp_path, smsc, peer, per_link_per_day=3) as daemon:
        await cards_sent(smsc, 1)
        code = code_of(tmp_path, CUSTOMER)
        for script, state, reason in [
                (CallScript.AGENT_NO_ANSWER, CallbackState.AGENT_MISSED, "no_answer"),
                (CallScript.CUSTOMER_NO_ANSWER, CallbackState.CUSTOMER_MISSED, "noanswer")]:
            peer.call_script = script
            await desk(daemon).request(code)
            ended = await state_of(daemon, code, state)
            assert ended.reason == reason
            # (a busy phone is tried again: test_callback_placing)
            await peer.send_event(device_state("PJSIP/1001", "NOT_INUSE"))
        peer.originate_allowed = False
        await desk(daemon).request(code)
        refused = await state_of(daemon, code, CallbackState.FAILED)
        assert refused.reason == "pbx_refused"
        limit = await desk(daemon).request(code)
        assert limit is not None and (limit.state, limit.reason) == (CallbackState.REFUSED,
                                                                     "link_limit")


async def test_outside_hours_is_refused_with_when_they_open(tmp_path: Path,
                                                            smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    zone = ZoneInfo("Asia/Shanghai")
    opens = datetime.now(zone).replace(second=0, microsecond=0) + timedelta(hours=3)
    day = opens.strftime("%a")
    hours = f"{day} {opens:%H:%M}-{opens + timedelta(minutes=1):%H:%M}"
    if opens.hour == 23 and opens.minute == 59:  # the one minute that would not parse
        opens += timedelta(minutes=1)
        hours = f"{opens:%a} 00:00-00:01"
    async with peer, daemon_with(tmp_path, smsc, peer, hours=hours) as daemon:
        await cards_sent(smsc, 1)
        view = await desk(daemon).request(code_of(tmp_path, CUSTOMER))
        assert view is not None and (view.state, view.reason) == (CallbackState.REFUSED,
                                                                  "outside_hours")
        assert view.opens_at == opens.timestamp()
        await asyncio.sleep(1.2)
        assert peer.actions_named("Originate") == []


async def test_one_call_back_at_a_time_per_agent(tmp_path: Path,
                                                 smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER, OTHER)
    peer.call_frame_delay = 0.15
    async with peer, daemon_with(tmp_path, smsc, peer) as daemon:
        await cards_sent(smsc, 2)
        first, second = code_of(tmp_path, CUSTOMER), code_of(tmp_path, OTHER)
        await desk(daemon).request(first)
        await desk(daemon).request(second)
        await until(lambda: peer.actions_named("Originate"))
        await asyncio.sleep(0.8)  # the first is still ringing, talking
        assert len(peer.actions_named("Originate")) == 1
        assert (await desk(daemon).latest(second)).state == CallbackState.WAITING  # type: ignore[union-attr]
        await state_of(daemon, first, CallbackState.DONE)
        await until(lambda: len(peer.actions_named("Originate")) == 2)
        assert peer.actions_named("Originate")[1]["Exten"] == "13900139000"
        await state_of(daemon, second, CallbackState.DONE)


async def test_a_waiting_call_back_is_placed_after_a_restart(tmp_path: Path,
                                                             smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    async with peer:
        async with daemon_with(tmp_path, smsc, peer) as daemon:
            await cards_sent(smsc, 1)
            await peer.send_event(device_state("PJSIP/1001", "ONHOLD"))
            await until(lambda: desk(daemon).presence("CS1001") == "busy")
            code = code_of(tmp_path, CUSTOMER)
            waiting = await desk(daemon).request(code)
        assert peer.actions_named("Originate") == []
        async with daemon_with(tmp_path, smsc, peer) as daemon:  # nothing known: placed
            await until(lambda: peer.actions_named("Originate"))
            done = await state_of(daemon, code, CallbackState.DONE)
            assert waiting is not None and done.id == waiting.id


async def test_a_call_back_waiting_too_long_expires(tmp_path: Path,
                                                    smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    later = [0.0]
    async with peer, daemon_with(tmp_path, smsc, peer, clock=lambda: time.time() + later[0],
                                 max_wait_minutes=1) as daemon:
        await cards_sent(smsc, 1)
        await peer.send_event(device_state("PJSIP/1001", "BUSY"))
        await until(lambda: desk(daemon).presence("CS1001") == "busy")
        code = code_of(tmp_path, CUSTOMER)
        await desk(daemon).request(code)
        await asyncio.sleep(1.2)
        assert (await desk(daemon).latest(code)).state == CallbackState.WAITING  # type: ignore[union-attr]
        later[0] = 61.0
        expired = await state_of(daemon, code, CallbackState.EXPIRED)
        assert expired.reason == "max_wait"
        await peer.send_event(device_state("PJSIP/1001", "NOT_INUSE"))
        await asyncio.sleep(1.2)
        assert peer.actions_named("Originate") == []
        metrics = generate_latest(daemon.metrics.registry).decode()
        assert 'ccshortlink_callbacks_total{outcome="expired"} 1.0' in metrics


async def test_on_postgresql_too(tmp_path: Path, smsc_factory: SmscFactory, pg_url: str) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    async with peer, daemon_with(tmp_path, smsc, peer, database={"url": pg_url}) as daemon:
        await cards_sent(smsc, 1)
        [card] = [m.text for m in smsc.messages() if m.complete]
        code = re.findall(r"cs\.example\.com/(\w+)", card)[0]
        view = await desk(daemon).request(code)
        assert view is not None and view.state == CallbackState.WAITING
        done = await state_of(daemon, code, CallbackState.DONE)
        assert done.id == view.id and len(peer.actions_named("Originate")) == 1


async def test_two_daemons_on_one_database_place_it_once_and_send_no_card(
        tmp_path: Path, smsc_factory: SmscFactory, pg_url: str) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shared = {"url": pg_url}
    async with peer, daemon_with(tmp_path / "a", smsc, peer, database=shared) as first:
        await cards_sent(smsc, 1)
        [card] = [m.text for m in smsc.messages() if m.complete]
        code = re.findall(r"cs\.example\.com/(\w+)", card)[0]
        async with daemon_with(tmp_path / "b", smsc, peer, database=shared) as second:
            await until(lambda: peer.logins >= 2)
            view = await desk(second).request(code)  # either may place it
            assert view is not None
            done = await state_of(first, code, CallbackState.DONE)
            assert done.id == view.id
            await asyncio.sleep(1.5)  # a second Originate or a card would be here by now
            assert len(peer.actions_named("Originate")) == 1
            assert len([m for m in smsc.messages() if m.complete]) == 1
            assert await decisions(first) == 1  # neither daemon decided the call-back's call
