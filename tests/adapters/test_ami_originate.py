"""AmiClient.originate against the AMI peer answering like Asterisk: queued, refused, down."""

from __future__ import annotations

import pytest

from ccshortlink.ami.client import AmiClient
from ccshortlink.ami.pbxs import PbxSessions
from ccshortlink.app.ports import PbxUnavailable
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
