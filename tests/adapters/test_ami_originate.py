"""AmiClient.originate against the AMI peer answering like Asterisk: queued, refused, down."""

from __future__ import annotations

import pytest

from ccshortlink.ami import client as client_module
from ccshortlink.ami.client import AmiClient
from ccshortlink.ami.pbxs import PbxSessions
from ccshortlink.app.ports import OriginateUnconfirmed, PbxUnavailable
from ccshortlink.core.callbacks import originate_fields
from ccshortlink.ops.logs import get_logger
from tests.support.amikit import Recorder, ami_config, eventually, free_port, running, serving

FIELDS = originate_fields(callback_id=9, extension="1001", number="+8613800138000",
                          agent_channel="SIP/{extension}", customer_context="from-internal",
                          customer_exten="{national}", caller_id="4008008888",
                          ring_agent_seconds=30)


async def test_queued_then_the_calls_events_come_as_events() -> None:
    recorder = Recorder()
    async with serving([]) as (peer, port):
        client = AmiClient(ami_config(port), recorder, get_logger(), on_state=recorder.on_state)
        async with running(client):
            await eventually(lambda: client.connected)
            assert await PbxSessions(["default"], [client]).originate("default", FIELDS) is None
            [sent] = peer.actions_named("Originate")
            assert {k: sent[k] for k in FIELDS} == FIELDS
            await eventually(lambda: any(e["Event"] == "Hangup" for e in recorder.events))
            [response] = [e for e in recorder.events if e["Event"] == "OriginateResponse"]
            assert (response["ActionID"], response["Response"]) == ("ccs-cb-9", "Success")
            peer.originate_allowed = False  # a user without write = originate
            assert await client.originate(FIELDS) == "Permission denied"


async def test_a_pbx_that_is_down_is_said_so() -> None:
    client = AmiClient(ami_config(free_port()), Recorder(), get_logger())
    sessions = PbxSessions(["default"], [client])
    assert not sessions.is_up("default") and not sessions.is_up("site-b")
    with pytest.raises(PbxUnavailable, match="not connected"):
        await sessions.originate("default", FIELDS)
    with pytest.raises(PbxUnavailable, match="no PBX named"):
        await sessions.originate("site-b", FIELDS)


async def test_an_originate_sent_but_not_answered_is_not_said_unsent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "_ACTION_TIMEOUT", 0.3)
    async with serving([]) as (peer, port):
        peer.answer_originate = False
        client = AmiClient(ami_config(port), Recorder(), get_logger())
        async with running(client):
            await eventually(lambda: client.connected)
            with pytest.raises(OriginateUnconfirmed, match="no answer"):
                await client.originate(FIELDS)
            assert len(peer.actions_named("Originate")) == 1
