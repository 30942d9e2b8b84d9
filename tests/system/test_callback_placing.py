"""Placing a call-back through the wired daemon when the PBX or the link changes meanwhile:
an Originate whose answer never came is not sent twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ccshortlink.ami import client
from ccshortlink.core.vocab import CallbackState
from tests.support.callbackdaemon import (
    CUSTOMER,
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
