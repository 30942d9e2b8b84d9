"""The AMI client over real TCP against the replaying peer: transcripts, login, reconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from ccshortlink.ami.client import AmiAuthError, AmiClient
from ccshortlink.ops.logs import get_logger
from ccshortlink.peers.amipeer import DEFAULT_BANNER, AmiPeer
from tests.support.amikit import (
    NAMES,
    SECRET,
    USER,
    CountingRandom,
    Recorder,
    ami_config,
    eventually,
    expected_events,
    fed,
    frames_of,
    free_port,
    named,
    running,
    serving,
)


@pytest.mark.parametrize("name", NAMES)
async def test_delivers_exactly_the_transcript_events_in_order(name: str) -> None:
    frames = frames_of(name)
    expected = expected_events(frames)
    recorder = Recorder()
    async with serving(frames) as (peer, port):
        config = ami_config(port, events="call,agent,user,cdr")
        client = AmiClient(config, recorder, get_logger(), on_state=recorder.on_state)
        async with running(client):
            await recorder.wait_for(len(expected))
            await peer.wait_done()
            assert client.connected
        assert recorder.events == expected
        login = peer.actions_named("Login")
        assert [(a["Username"], a["Events"]) for a in login] == [(USER, "call,agent,user,cdr")]
        assert len(peer.actions_named("Logoff")) == 1
    assert [state for state, _ in recorder.states] == [True, False]
    assert not client.connected


@pytest.mark.parametrize("name", ["01-sip-answered-customer-hangup.txt",
                                  "04-queue-sip-members-answered.txt"])
async def test_delivers_in_order_when_bytes_arrive_one_by_one(name: str) -> None:
    frames = frames_of(name)
    recorder = Recorder()
    async with serving(frames, chunk_size=1) as (peer, port):
        async with running(AmiClient(ami_config(port), recorder, get_logger())):
            await peer.wait_done()
            await recorder.wait_for(len(expected_events(frames)))
    assert recorder.events == expected_events(frames)


@pytest.mark.parametrize("options", [{"secret": "wrong"}, {"refuse_login": True}])
async def test_rejected_login_raises_auth_error_without_retrying(options: dict[str, Any]) -> None:
    peer = AmiPeer(frames_of("05-userevent-sendcard.txt"), username=USER,
                   secret=options.get("secret", SECRET),
                   refuse_login=options.get("refuse_login", False))
    port = await peer.start()
    try:
        with capture_logs() as logs:
            client = AmiClient(ami_config(port), Recorder(), get_logger())
            with pytest.raises(AmiAuthError, match="rejected"):
                await asyncio.wait_for(client.run(asyncio.Event()), 3)
        assert (peer.connections, peer.failed_logins, peer.frames_sent) == (1, 1, 0)
        assert len(named(logs, "ami_login_failed")) == 1
        assert named(logs, "ami_disconnected") == []
        assert SECRET not in repr(logs)
    finally:
        await peer.stop()


async def test_refused_connection_logged_once_then_connects_when_the_pbx_starts() -> None:
    port = free_port()
    frames = frames_of("05-userevent-sendcard.txt")
    recorder, rng = Recorder(), CountingRandom(1)
    peer = AmiPeer(frames, username=USER, secret=SECRET)
    try:
        with capture_logs() as logs:
            client = AmiClient(ami_config(port), recorder, get_logger(), rng=rng)
            async with running(client):
                await eventually(lambda: rng.retries >= 4)  # several refused attempts
                await peer.start(port=port)
                await recorder.wait_for(len(expected_events(frames)))
    finally:
        await peer.stop()
    down = named(logs, "ami_disconnected")
    assert len(down) == 1 and down[0]["reason"] == "connection refused"
    assert len(named(logs, "ami_connected")) == 1
    assert recorder.events == expected_events(frames)


async def test_dropped_connection_is_reconnected_and_delivery_resumes() -> None:
    frames = frames_of("04-queue-sip-members-answered.txt")  # 38 frames: 6 connections of <= 7
    expected = expected_events(frames)
    recorder = Recorder()
    with capture_logs() as logs:
        async with serving(frames, drop_after_frames=7, replay_on_reconnect=False) as (peer, port):
            async with running(AmiClient(ami_config(port), recorder, get_logger())):
                await recorder.wait_for(len(expected))
                await peer.wait_done()
    assert recorder.events == expected  # each exactly once, in order, across 6 connections
    assert peer.connections == 6
    assert len(named(logs, "ami_connected")) == 6
    assert [e["reason"] for e in named(logs, "ami_disconnected")] == ["closed by the PBX"] * 5


async def test_pbx_restart_on_the_same_port() -> None:
    first, second = frames_of("01-sip-answered-customer-hangup.txt"), frames_of(
        "05-userevent-sendcard.txt")
    recorder = Recorder()
    async with serving(first) as (old_peer, port):
        client = AmiClient(ami_config(port), recorder, get_logger(), on_state=recorder.on_state)
        async with running(client):
            await recorder.wait_for(len(expected_events(first)))
            await old_peer.stop()
            async with serving(second, port=port):  # the restarted PBX, same port
                await recorder.wait_for(len(expected_events(first + second)))
                # The replay can reach the handler in the same read as the login answer,
                # before the client has marked itself connected: wait for that too.
                await eventually(lambda: client.connected)
    assert recorder.events == expected_events(first + second)
    assert [state for state, _ in recorder.states] == [True, False, True, False]


async def test_silent_peer_detected_by_ping_timeout_and_reconnected() -> None:
    interval, timeout = 0.2, 0.2
    recorder = Recorder()
    with capture_logs() as logs:
        async with serving(frames_of("05-userevent-sendcard.txt"),
                           answer_pings=False) as (peer, port):
            config = ami_config(port, ping_interval=interval, ping_timeout=timeout)
            async with running(AmiClient(config, recorder, get_logger(),
                                         on_state=recorder.on_state)):
                await peer.wait_for_login(2)
    (up, up_at), (down, down_at) = recorder.states[:2]
    assert (up, down) == (True, False)
    assert interval + timeout - 0.05 <= down_at - up_at <= interval + timeout + 1.0
    assert len(named(logs, "ami_ping_timeout")) >= 1
    assert "Ping" in named(logs, "ami_disconnected")[0]["reason"]


async def test_answered_pings_keep_one_session() -> None:
    with capture_logs() as logs:
        async with serving(frames_of("05-userevent-sendcard.txt")) as (peer, port):
            config = ami_config(port, ping_interval=0.05, ping_timeout=0.5)
            async with running(AmiClient(config, Recorder(), get_logger())):
                await peer.wait_for(lambda: len(peer.actions_named("Ping")) >= 5)
    assert peer.connections == 1
    assert named(logs, "ami_ping_timeout") == [] and named(logs, "ami_disconnected") == []


async def test_malformed_frames_are_logged_and_skipped() -> None:
    frames = frames_of("01-sip-answered-customer-hangup.txt")
    garbage = [b"\xff\xfe\x00\x81garbage\r\n\r\n",
               b"Event: Hangup\r\n\x00\xffCause: 16\r\n\r\n",
               b"Event: Hangup\r\nthis line has no colon\r\n\r\n",
               b"Channel: SIP/1001-00000001\r\nCause: 16\r\n\r\n"]
    stream = frames[:3] + garbage[:2] + frames[3:6] + garbage[2:] + frames[6:]
    recorder = Recorder()
    with capture_logs() as logs:
        async with serving(stream) as (peer, port):
            client = AmiClient(ami_config(port), recorder, get_logger())
            async with running(client):
                await peer.wait_done()
                await recorder.wait_for(len(expected_events(frames)))
                assert client.connected
    assert recorder.events == expected_events(frames)
    malformed = named(logs, "ami_frame_malformed")
    assert [m["reason"] for m in malformed] == [
        "header without colon", "bad header name", "header without colon",
        "neither Event nor Response"]
    assert peer.connections == 1


async def test_a_failing_handler_is_logged_and_later_events_still_arrive() -> None:
    frames = frames_of("04-queue-sip-members-answered.txt")
    expected = expected_events(frames)
    recorder = Recorder(fail_on="Newchannel")
    with capture_logs() as logs:
        async with serving(frames) as (peer, port):
            async with running(AmiClient(ami_config(port), recorder, get_logger())):
                await peer.wait_done()
                await recorder.wait_for(len(expected) - 3)
    assert recorder.events == [e for e in expected if e["Event"] != "Newchannel"]
    failures = named(logs, "ami_handler_failed")
    assert [f["event_name"] for f in failures] == ["Newchannel"] * 3
    assert peer.connections == 1


async def test_a_coroutine_handler_is_reported_not_silently_dropped() -> None:
    async def handler(event: dict[str, str]) -> None:
        raise AssertionError("never awaited")

    with capture_logs() as logs:
        events, _ = fed([DEFAULT_BANNER, b"Event: Hangup\r\nCause: 16\r\n\r\n"], handler)
    assert [(e["event"], e["event_name"]) for e in logs] == [("ami_handler_failed", "Hangup")]
    assert "synchronous" in logs[0]["reason"]


async def test_stop_logs_off_and_returns_within_two_seconds() -> None:
    async with serving(frames_of("05-userevent-sendcard.txt")) as (peer, port):
        client = AmiClient(ami_config(port), Recorder(), get_logger())
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        await peer.wait_done()
        await eventually(lambda: client.connected)
        stop.set()
        await asyncio.wait_for(task, 2.0)
        await peer.wait_for(lambda: peer.open_connections == 0)
        assert len(peer.actions_named("Logoff")) == 1
        assert not client.connected
