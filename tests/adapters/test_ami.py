"""The AMI client over real TCP against the replaying peer, and its framing fed byte by byte."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from panoramisk.actions import Action
from structlog.testing import capture_logs

from ccshortlink.ami.client import AmiAuthError, AmiClient, AmiProtocol
from ccshortlink.config.settings import AmiConfig
from ccshortlink.ops.logs import get_logger
from ccshortlink.peers.amipeer import DEFAULT_BANNER, AmiPeer, read_transcript

FIXTURES = Path(__file__).parent.parent / "fixtures"
NAMES = sorted(p.name for p in FIXTURES.glob("*.txt"))
USER, SECRET = "ccshortlink", "s3cret-for-tests"
WANG = "王小梅"


def frames_of(name: str) -> list[bytes]:
    return read_transcript(FIXTURES / name)[1]


def expected_events(frames: list[bytes]) -> list[dict[str, str]]:
    """What the client must deliver: each Event frame's headers, read independently."""
    events = []
    for frame in frames:
        lines = frame.decode("utf-8").split("\r\n")
        event = dict(line.split(": ", 1) for line in lines if ": " in line)
        if "Event" in event:
            events.append(event)
    return events


def with_caller_name(frames: list[bytes], name: str) -> list[bytes]:
    """The customer's Newchannel/Newstate frames carrying a non-ASCII caller name."""
    old = b"CallerIDName: +8613800138000\r\n"
    return [f.replace(old, f"CallerIDName: {name}\r\n".encode()) for f in frames]


def ami_config(port: int, **overrides: Any) -> AmiConfig:
    settings: dict[str, Any] = dict(ping_interval=0.3, ping_timeout=0.3, reconnect_max=0.1)
    settings.update(overrides)
    return AmiConfig(host="127.0.0.1", port=port, username=USER, secret=SECRET, **settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def named(logs: Iterable[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `condition` holds; the deadline is only a safety net, never the assertion."""
    async with asyncio.timeout(timeout):
        # a condition on plain values has no event to wait on: polled, 10 ms apart
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class Recorder:
    """on_event / on_state that remember what they were given."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.events: list[dict[str, str]] = []
        self.states: list[tuple[bool, float]] = []
        self.fail_on = fail_on

    def __call__(self, event: dict[str, str]) -> None:
        if event["Event"] == self.fail_on:
            raise RuntimeError(f"handler cannot cope with {self.fail_on}")
        self.events.append(event)

    def on_state(self, connected: bool) -> None:
        self.states.append((connected, asyncio.get_running_loop().time()))

    async def wait_for(self, count: int) -> None:
        await eventually(lambda: len(self.events) >= count)


class CountingRandom(random.Random):
    """Counts scheduled retries (each draws one jitter value)."""

    retries = 0

    def uniform(self, a: float, b: float) -> float:
        self.retries += 1
        return super().uniform(a, b)


@asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        yield task
    finally:
        stop.set()
        async with asyncio.timeout(2.5):  # run() promises to be gone within 2 s
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def serving(frames: list[bytes], port: int = 0,
                  **options: Any) -> AsyncIterator[tuple[AmiPeer, int]]:
    peer = AmiPeer(frames, username=USER, secret=SECRET, **options)
    port = await peer.start(port=port)
    try:
        yield peer, port
    finally:
        await peer.stop()


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


class FakeTransport:
    """Stands in for the socket when bytes are fed to the protocol by hand."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


def fed(chunks: list[bytes], on_event: Callable[[dict[str, str]], Any] | None = None
        ) -> tuple[list[dict[str, str]], AmiProtocol]:
    events: list[dict[str, str]] = []
    protocol = AmiProtocol(on_event or events.append, get_logger())
    protocol.connection_made(FakeTransport())
    for chunk in chunks:
        protocol.data_received(chunk)
    return events, protocol


async def test_utf8_caller_name_survives_a_split_at_every_byte_offset() -> None:
    frames = with_caller_name(frames_of("01-sip-answered-customer-hangup.txt")[:4], WANG)
    stream = DEFAULT_BANNER + b"".join(frames)
    expected = expected_events(frames)
    assert expected[1]["CallerIDName"] == WANG
    for offset in range(1, len(stream)):
        events, _ = fed([stream[:offset], stream[offset:]])
        assert events == expected, f"split at byte {offset}"
    events, _ = fed([stream[i:i + 1] for i in range(len(stream))])
    assert events == expected


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
async def test_utf8_caller_name_over_tcp_in_small_chunks(chunk_size: int) -> None:
    frames = with_caller_name(frames_of("01-sip-answered-customer-hangup.txt"), WANG)
    expected = expected_events(frames)
    recorder = Recorder()
    async with serving(frames, chunk_size=chunk_size) as (peer, port):
        async with running(AmiClient(ami_config(port), recorder, get_logger())):
            await peer.wait_done()
            await recorder.wait_for(len(expected))
    assert recorder.events == expected
    assert sum(e.get("CallerIDName") == WANG for e in recorder.events) >= 2


async def test_repeated_header_keeps_every_value_joined_by_newline() -> None:
    events, _ = fed([DEFAULT_BANNER, b"Event: Hangup\r\nChanVariable: A=1\r\n"
                     b"ChanVariable: B=2\r\nAccountCode: \r\n\r\n"])
    assert events == [{"Event": "Hangup", "ChanVariable": "A=1\nB=2", "AccountCode": ""}]


async def test_invalid_utf8_in_a_value_still_delivers_the_event() -> None:
    events, _ = fed([DEFAULT_BANNER, b"Event: Hangup\r\nCallerIDName: \xcd\xf5\r\n\r\n"])
    assert events == [{"Event": "Hangup", "CallerIDName": "\ufffd\ufffd"}]


async def test_a_server_that_is_not_ami_is_dropped() -> None:
    events, protocol = fed([b"SSH-2.0-OpenSSH_9.2\r\nEvent: Hangup\r\n\r\n"])
    assert events == [] and protocol.transport.aborted
    assert protocol.reason is not None and "not an AMI server" in protocol.reason


def cut(stream: bytes, size: int) -> list[bytes]:
    return [stream[i:i + size] for i in range(0, len(stream), size)]


# Frames Asterisk itself never sends, each with what must be delivered (None: nothing).
UNUSUAL_FRAMES: list[tuple[bytes, dict[str, str] | None]] = [
    (b"Event: Hangup\r\nChanVariable: A=1\r\nUniqueid: 1.1\r\nChanVariable: B=2\r\n\r\n",
     {"Event": "Hangup", "ChanVariable": "A=1\nB=2", "Uniqueid": "1.1"}),
    (b"Event: UserEvent\r\nUserEvent:SendCard\r\nURI:sip: 1001@pbx\r\nData:  x\r\n\r\n",
     {"Event": "UserEvent", "UserEvent": "SendCard", "URI": "sip: 1001@pbx", "Data": " x"}),
    (b"Event: Newstate\nChannel: SIP/1001-00000001\nChannelState: 6\n\n",
     {"Event": "Newstate", "Channel": "SIP/1001-00000001", "ChannelState": "6"}),
    (b"Event: Newstate\r\nChannel: SIP/1002-00000002\n\r\n",
     {"Event": "Newstate", "Channel": "SIP/1002-00000002"}),
    (b"Event: Newstate\r\nCallerIDName: a\rb\r\r\nExten: 5000\r\n\r\n",
     {"Event": "Newstate", "CallerIDName": "a\rb", "Exten": "5000"}),
    (b"\r\n\r\n", None),
    (b"\r\nEvent: Hangup\r\nCause: 16\r\n\r\n", {"Event": "Hangup", "Cause": "16"}),
]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1460, 16384, 1 << 20])
async def test_unusual_but_valid_frames_arrive_intact_however_the_reads_fall(size: int) -> None:
    frames = frames_of("04-queue-sip-members-answered.txt")
    stream, expected = DEFAULT_BANNER, []
    for index, frame in enumerate(frames):
        stream += frame
        expected += expected_events([frame])
        unusual, event = UNUSUAL_FRAMES[index % len(UNUSUAL_FRAMES)]
        stream += unusual
        expected += [event] if event else []
    with capture_logs() as logs:
        events, protocol = fed(cut(stream, size))
    assert events == expected
    assert named(logs, "ami_frame_malformed") == [] and not protocol.transport.aborted


@pytest.mark.parametrize("size", [1, 1460, 1 << 20])
async def test_bad_frames_among_good_ones_are_reported_with_their_reason(size: int) -> None:
    good = frames_of("01-sip-answered-customer-hangup.txt")
    bad = [b"Event: Hangup\r\nBad Name: 1\r\n\r\n", b"Event: Hangup\r\n: 16\r\n\r\n",
           b"Event: Hangup\r\nUniqueid 1.1\r\n\r\n", b"Uniqueid: 1.1\r\nCause: 16\r\n\r\n"]
    stream = DEFAULT_BANNER + b"".join(good[:5] + bad + good[5:])  # names already seen, then bad
    with capture_logs() as logs:
        events, _ = fed(cut(stream, size))
    assert events == expected_events(good)
    malformed = named(logs, "ami_frame_malformed")
    assert [m["reason"] for m in malformed] == [
        "bad header name", "bad header name", "header without colon",
        "neither Event nor Response"]
    assert [m["head"] for m in malformed] == [frame[:-4].decode() for frame in bad]


async def test_an_oversized_frame_is_dropped_and_the_session_goes_on() -> None:
    frames = frames_of("05-userevent-sendcard.txt")
    runaway = b"Event: Hangup\r\nChanVariable: " + b"x" * (1 << 20)
    with capture_logs() as logs:
        events, protocol = fed([DEFAULT_BANNER, *cut(runaway, 1460), b"\r\n\r\n", *frames])
    assert events == expected_events(frames)
    assert [m["reason"] for m in named(logs, "ami_frame_malformed")] == ["frame too large"]
    assert not protocol.transport.aborted


async def test_a_response_amid_events_completes_its_action_in_stream_order() -> None:
    frames = frames_of("01-sip-answered-customer-hangup.txt")
    seen: list[tuple[str, bool]] = []
    events, protocol = fed([DEFAULT_BANNER], lambda e: seen.append((e["Event"], pong.done())))
    ping = Action({"Action": "Ping"})
    pong = protocol.send(ping)
    response = f"Response: Success\r\nActionID: {ping.id}\r\nPing: Pong\r\n\r\n".encode()
    protocol.data_received(b"".join(frames[:3]) + response + b"".join(frames[3:]))
    assert pong.done() and pong.result().success
    assert [done for _, done in seen] == [False] * 3 + [True] * (len(seen) - 3)
    assert [name for name, _ in seen] == [e["Event"] for e in expected_events(frames)]


async def test_events_after_the_handler_ends_the_session_are_not_delivered() -> None:
    frames = frames_of("01-sip-answered-customer-hangup.txt")
    names: list[str] = []

    def hang_up_on_first_hangup(event: dict[str, str]) -> None:
        names.append(event["Event"])
        if event["Event"] == "Hangup":
            protocol.abort("handler gave up")

    _, protocol = fed([DEFAULT_BANNER], hang_up_on_first_hangup)
    protocol.data_received(b"".join(frames))
    expected = [e["Event"] for e in expected_events(frames)]
    assert names == expected[:expected.index("Hangup") + 1] and names != expected
    assert protocol.reason == "handler gave up"


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
