"""Placing a call-back through the wired daemon when the PBX or the link changes meanwhile:
an Originate whose answer never came is not sent twice; what the request judged (hours,
opt-out, the link) is judged again when a waiting call-back's agent comes free."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ccshortlink.ami import client
from ccshortlink.core.vocab import CallbackState
from ccshortlink.peers.originate import CallScript, device_state
from tests.support.callbackdaemon import (
    CUSTOMER,
    OTHER,
    cards_sent,
    code_of,
    daemon_with,
    desk,
    peer_with,
    state_of,
    until,
)
from tests.support.smsc_peer import SmscFactory


async def test_an_originate_without_an_answer_rings_the_agent_once(
        tmp_path: Path, smsc_factory: SmscFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "_ACTION_TIMEOUT", 0.5)
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    peer.answer_originate = False  # written, but no Response: yet the PBX rings the agent
    peer.call_frame_delay = 0.1  # its OriginateResponse comes after the client gave up
    async with peer, daemon_with(tmp_path, smsc, peer) as daemon:
        await cards_sent(smsc, 1)
        code = code_of(tmp_path, CUSTOMER)
        await desk(daemon).request(code)
        await until(lambda: peer.actions_named("Originate"))
        await state_of(daemon, code, CallbackState.DONE)  # followed all the same
        await asyncio.sleep(1.2)  # a second Originate would be here by now
        assert len(peer.actions_named("Originate")) == 1


async def test_what_changed_while_it_waited_refuses_it_when_the_agent_comes_free(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    third = "+8613700137000"
    peer = peer_with(CUSTOMER, OTHER, third)
    zone = ZoneInfo("Asia/Shanghai")
    monday = datetime(2026, 12, 7, 17, 50, tzinfo=zone).timestamp()  # open till 18:00
    started, later = time.time(), [0.0]
    async with peer, daemon_with(tmp_path, smsc, peer, hours="Mon-Fri 09:00-18:00",
                                 clock=lambda: monday + time.time() - started + later[0]
                                 ) as daemon:
        await cards_sent(smsc, 3)
        store = daemon.parts.cards.store  # type: ignore[attr-defined]
        await peer.send_event(device_state("PJSIP/1001", "INUSE"))
        await until(lambda: desk(daemon).presence("CS1001") == "busy")
        codes = [code_of(tmp_path, number) for number in (CUSTOMER, OTHER, third)]
        for code in codes[:2]:
            assert (await desk(daemon).request(code)).state == CallbackState.WAITING  # type: ignore[union-attr]
        await store.set_opt_out(CUSTOMER, True, "sms", monday + 60)  # STOP by SMS meanwhile
        assert await store.revoke_link(codes[1], monday + 60)  # the agent revoked the link
        await peer.send_event(device_state("PJSIP/1001", "NOT_INUSE"))
        for code, reason in zip(codes[:2], ["opted_out", "link_not_live"], strict=True):
            refused = await state_of(daemon, code, CallbackState.REFUSED)
            assert refused.reason == reason
        await peer.send_event(device_state("PJSIP/1001", "INUSE"))
        await until(lambda: desk(daemon).presence("CS1001") == "busy")
        assert (await desk(daemon).request(codes[2])).state == CallbackState.WAITING  # type: ignore[union-attr]
        later[0] = 20 * 60.0  # 18:10: the agent's day is over
        await peer.send_event(device_state("PJSIP/1001", "NOT_INUSE"))
        closed = await state_of(daemon, codes[2], CallbackState.REFUSED)
        assert (closed.reason, closed.opens_at) == (
            "outside_hours", datetime(2026, 12, 8, 9, 0, tzinfo=zone).timestamp())
        assert peer.actions_named("Originate") == []


async def test_a_paused_agent_whose_phone_is_idle_is_not_rung(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    paused = ("Event: QueueMemberStatus\r\nPrivilege: agent,all\r\nQueue: support\r\n"
              "MemberName: Agent 1001\r\nInterface: Local/1001@from-queue/n\r\n"
              "StateInterface: PJSIP/1001\r\nMembership: dynamic\r\nPenalty: 0\r\n"
              "CallsTaken: 3\r\nLastCall: 0\r\nLastPause: 0\r\nInCall: 0\r\nStatus: 1\r\n"
              "Paused: {}\r\nPausedReason: lunch\r\nRinginuse: 0\r\nWrapuptime: 0\r\n\r\n")
    async with peer, daemon_with(tmp_path, smsc, peer) as daemon:
        await cards_sent(smsc, 1)
        await peer.send_event(paused.format(1).encode())
        await peer.send_event(device_state("PJSIP/1001", "NOT_INUSE"))  # the idle phone
        await until(lambda: desk(daemon).presence("CS1001") == "away")
        code = code_of(tmp_path, CUSTOMER)
        assert (await desk(daemon).request(code)).state == CallbackState.WAITING  # type: ignore[union-attr]
        await asyncio.sleep(1.2)  # the dispatcher looks at least once a second
        assert peer.actions_named("Originate") == []
        await peer.send_event(paused.format(0).encode())  # back from lunch
        await state_of(daemon, code, CallbackState.DONE)


async def test_a_busy_agent_is_tried_again_within_the_wait_not_given_up(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with(CUSTOMER)
    later = [0.0]
    async with peer, daemon_with(tmp_path, smsc, peer, max_wait_minutes=2,
                                 clock=lambda: time.time() + later[0]) as daemon:
        await cards_sent(smsc, 1)
        code = code_of(tmp_path, CUSTOMER)
        # Nothing known of the agent (just after an AMI reconnect, say): placed at once, and
        # the phone answers busy (Reason 5).
        peer.call_script = CallScript.AGENT_BUSY
        await desk(daemon).request(code)
        await until(lambda: peer.actions_named("Originate"))
        await asyncio.sleep(1.5)
        waiting = await desk(daemon).latest(code)
        assert waiting is not None and waiting.state == CallbackState.WAITING
        assert len(peer.actions_named("Originate")) == 1  # not rung again at once
        peer.call_script = CallScript.ANSWERED
        later[0] = 31.0  # a while later, still within max_wait_minutes
        await until(lambda: len(peer.actions_named("Originate")) == 2)
        done = await state_of(daemon, code, CallbackState.DONE)
        assert done.id == waiting.id
        peer.call_script = CallScript.AGENT_BUSY  # busy every time: waits till max_wait
        again = await desk(daemon).request(code)
        await until(lambda: len(peer.actions_named("Originate")) == 3)
        assert (await state_of(daemon, code, CallbackState.WAITING)).id == again.id  # type: ignore[union-attr]
        later[0] += 121.0
        expired = await state_of(daemon, code, CallbackState.EXPIRED)
        assert expired.reason == "max_wait"
        assert len(peer.actions_named("Originate")) == 3


async def test_an_agent_known_by_a_channel_name_is_rung_on_that_channel(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = peer_with()
    desk_phone = 'extensions: ["PJSIP/desk-ann"]'
    async with peer, daemon_with(tmp_path, smsc, peer, agents=lambda text: text.replace(
            'extensions: ["1001"]', desk_phone, 1)) as daemon:
        store = daemon.parts.cards.store  # type: ignore[attr-defined]
        now = time.time()
        await store._write(lambda db: db.execute(
            "INSERT INTO links (code, agent_id, customer_number, created_at, expires_at, pbx)"
            " VALUES ('desk1111', 'CS1001', ?, ?, ?, 'default')", (CUSTOMER, now, now + 3600)))
        await peer.send_event(device_state("PJSIP/desk-ann", "INUSE"))  # its presence too
        await until(lambda: desk(daemon).presence("CS1001") == "busy")
        assert (await desk(daemon).request("desk1111")).state == CallbackState.WAITING  # type: ignore[union-attr]
        await peer.send_event(device_state("PJSIP/desk-ann", "NOT_INUSE"))
        await until(lambda: peer.actions_named("Originate"))
        assert peer.actions_named("Originate")[0]["Channel"] == "PJSIP/desk-ann"
        await state_of(daemon, "desk1111", CallbackState.DONE)
