"""The transcript tools and the replaying AMI peer, driven by a raw TCP client."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ccshortlink.peers.amipeer import (
    DEFAULT_BANNER,
    TERMINATOR,
    AmiPeer,
    event_name,
    interleave,
    read_transcript,
    rewrite_call,
    split_transcript,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
NAMES = sorted(p.name for p in FIXTURES.glob("*.txt"))
USER, SECRET = "ccshortlink", "s3cret-for-tests"


def headers(frame: bytes) -> list[tuple[str, str]]:
    pairs = []
    for line in frame.decode("utf-8").split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep:
            pairs.append((name, value))
    return pairs


def values(frames: list[bytes], pattern: str) -> list[str]:
    return [v for f in frames for n, v in headers(f) if re.fullmatch(pattern, n) and v]


ID_HEADERS = r"(?i).*(uniqueid|linkedid)"
CHANNEL_HEADERS = r".*Channel"


@pytest.mark.parametrize("name", NAMES)
def test_split_transcript_keeps_every_frame_byte_exact(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    banner, frames = split_transcript(raw)
    assert banner == DEFAULT_BANNER
    rest = raw[len(banner):]
    login = rest[:rest.index(TERMINATOR) + len(TERMINATOR)]
    goodbye = rest[rest.rindex(b"Response: Goodbye"):]
    assert login.startswith(b"Response: Success") and b"Authentication accepted" in login
    assert rest == login + b"".join(frames) + goodbye
    assert all(f.endswith(TERMINATOR) and TERMINATOR not in f[:-4] for f in frames)
    assert event_name(frames[0]) == "FullyBooted"
    assert sum(1 for f in frames if event_name(f)) == raw.count(b"\r\nEvent: ")


def test_split_transcript_refuses_what_is_not_a_transcript() -> None:
    with pytest.raises(ValueError, match="banner"):
        split_transcript(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(ValueError, match="middle of a frame"):
        split_transcript(DEFAULT_BANNER + b"Event: Hangup\r\nChannel: SIP/1001-0000")


def pairs_of(original: list[bytes], rewritten: list[bytes], pattern: str) -> set[tuple[str, str]]:
    return set(zip(values(original, pattern), values(rewritten, pattern), strict=True))


@pytest.mark.parametrize("name", ["04-queue-sip-members-answered.txt", "06-local-originate.txt"])
def test_rewrite_call_gives_fresh_consistent_ids(name: str) -> None:
    _, frames = read_transcript(FIXTURES / name)
    first, second = rewrite_call(frames, index=1), rewrite_call(frames, index=2)
    assert rewrite_call(frames, index=1) == first  # deterministic
    for call in (first, second):
        # same frames, same headers in the same order
        assert [[n for n, _ in headers(f)] for f in call] == [[n for n, _ in headers(f)]
                                                               for f in frames]
    bridged = "06" not in name  # the Local originate never enters a bridge
    for pattern in (ID_HEADERS, CHANNEL_HEADERS) + (("BridgeUniqueid",) if bridged else ()):
        sets = [set(values(call, pattern)) for call in (frames, first, second)]
        assert sets[0] and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        # one old value <-> one new value: the call's structure (who is linked to whom) is kept
        pairs = pairs_of(frames, first, pattern)
        assert len({old for old, _ in pairs}) == len(pairs) == len({new for _, new in pairs})
    for old, new in pairs_of(frames, first, CHANNEL_HEADERS):
        assert new.rsplit("-", 1)[0] == old.rsplit("-", 1)[0]  # SIP/1001-XXXXXXXX keeps SIP/1001
        assert old[-2:] != ";1" or new.endswith(";1")


def test_rewrite_call_replaces_customer_and_agent() -> None:
    _, frames = read_transcript(FIXTURES / "01-sip-answered-customer-hangup.txt")
    call = rewrite_call(frames, index=5, customer_number="+8613912345678", agent_extension="2001")
    stream = b"".join(call)
    assert b"+8613800138000" not in stream
    assert re.search(rb"(?<![0-9A-Za-z.])1001(?![0-9A-Za-z])", stream) is None
    hangups = [dict(headers(f)) for f in call if event_name(f) == "Hangup"]
    agent_leg = next(h for h in hangups if h["Channel"].startswith("SIP/2001-"))
    assert agent_leg["CallerIDNum"] == "2001"
    assert agent_leg["CallerIDName"] == "Agent 2001"
    assert agent_leg["ConnectedLineNum"] == "+8613912345678"


def test_rewrite_call_keeps_utf8_text() -> None:
    frame = "Event: Newchannel\r\nCallerIDName: 王小梅\r\nUniqueid: 1795460028.0\r\n\r\n"
    (rewritten,) = rewrite_call([frame.encode()], index=3)
    assert dict(headers(rewritten))["CallerIDName"] == "王小梅"
    assert dict(headers(rewritten))["Uniqueid"] == "1800000003.0"


def synthetic_call(number: int, length: int) -> list[bytes]:
    return [f"Event: Test\r\nCall: {number}\r\nStep: {step}\r\n\r\n".encode()
            for step in range(length)]


def test_interleave_keeps_each_call_in_order_and_is_deterministic() -> None:
    calls = [synthetic_call(n, 12) for n in range(4)]
    stream = interleave(calls, seed=7)
    assert sorted(stream) == sorted(f for call in calls for f in call)
    for n, call in enumerate(calls):
        assert [f for f in stream if f"Call: {n}\r\n".encode() in f] == call
    assert stream != [f for call in calls for f in call]  # actually mixed
    assert interleave(calls, seed=7) == stream
    assert interleave(calls, seed=8) != stream


class RawClient:
    """A bare AMI client: what a test sends and reads, byte for byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, **fields: str) -> None:
        text = "".join(f"{name}: {value}\r\n" for name, value in fields.items()) + "\r\n"
        self.writer.write(text.encode())
        await self.writer.drain()

    async def frame(self) -> bytes:
        async with asyncio.timeout(5):
            return await self.reader.readuntil(TERMINATOR)

    async def frames_until_closed(self) -> list[bytes]:
        frames = []
        async with asyncio.timeout(5):
            while True:
                try:
                    frames.append(await self.reader.readuntil(TERMINATOR))
                except asyncio.IncompleteReadError as exc:
                    assert exc.partial == b""
                    return frames

    async def login(self, secret: str = SECRET, **extra: str) -> bytes:
        await self.send(Action="Login", ActionID="login-7", Username=USER, Secret=secret, **extra)
        return await self.frame()


@asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = RawClient(reader, writer)
    try:
        async with asyncio.timeout(5):
            assert await reader.readline() == DEFAULT_BANNER
        yield client
    finally:
        writer.close()


@asynccontextmanager
async def serving(frames: list[bytes], **options: object) -> AsyncIterator[tuple[AmiPeer, int]]:
    peer = AmiPeer(frames, username=USER, secret=SECRET, **options)  # type: ignore[arg-type]
    port = await peer.start()
    try:
        yield peer, port
    finally:
        await peer.stop()


@pytest.fixture
def call_01() -> list[bytes]:
    return read_transcript(FIXTURES / "01-sip-answered-customer-hangup.txt")[1]


@pytest.mark.parametrize("chunk_size", [None, 3])
async def test_login_accepted_then_frames_replayed_byte_exact(
        call_01: list[bytes], chunk_size: int | None) -> None:
    async with serving(call_01, chunk_size=chunk_size, hold_open=False) as (peer, port):
        async with raw_client(port) as client:
            assert await client.login(Events="call,agent,user") == (
                b"Response: Success\r\nActionID: login-7\r\n"
                b"Message: Authentication accepted\r\n\r\n")
            assert await client.frames_until_closed() == call_01
        assert peer.logins == 1 and peer.replays_completed == 1
        assert peer.actions[0]["Events"] == "call,agent,user"


@pytest.mark.parametrize("secret, refuse", [("wrong", False), (SECRET, True)])
async def test_rejected_login_gets_error_and_is_closed(
        call_01: list[bytes], secret: str, refuse: bool) -> None:
    async with serving(call_01, refuse_login=refuse) as (peer, port):
        async with raw_client(port) as client:
            assert await client.login(secret) == (
                b"Response: Error\r\nActionID: login-7\r\nMessage: Authentication failed\r\n\r\n")
            assert await client.frames_until_closed() == []
        assert (peer.logins, peer.failed_logins, peer.frames_sent) == (0, 1, 0)


async def test_actions_before_login_are_refused(call_01: list[bytes]) -> None:
    async with serving(call_01) as (peer, port):
        async with raw_client(port) as client:
            await client.send(Action="Ping", ActionID="p0")
            assert b"Response: Error\r\nActionID: p0\r\nMessage: Permission denied" in (
                await client.frame())
        assert peer.frames_sent == 0


async def test_ping_answered_with_pong_and_logoff_says_goodbye() -> None:
    async with serving([]) as (peer, port):
        async with raw_client(port) as client:
            await client.login()
            await client.send(Action="Ping", ActionID="p1")
            pong = dict(headers(await client.frame()))
            assert (pong["Response"], pong["ActionID"], pong["Ping"]) == ("Success", "p1", "Pong")
            assert float(pong["Timestamp"]) > 0
            await client.send(Action="Logoff", ActionID="bye")
            assert await client.frame() == (
                b"Response: Goodbye\r\nActionID: bye\r\nMessage: Thanks for all the fish.\r\n\r\n")
            assert await client.frames_until_closed() == []
        assert [a["Action"] for a in peer.actions] == ["Login", "Ping", "Logoff"]


async def test_silent_peer_ignores_pings() -> None:
    async with serving([], answer_pings=False) as (_, port), raw_client(port) as client:
        await client.login()
        await client.send(Action="Ping", ActionID="p1")
        await client.send(Action="Logoff", ActionID="bye")
        # the next thing said is the Goodbye: the Ping got nothing
        assert (await client.frame()).startswith(b"Response: Goodbye\r\nActionID: bye")


@pytest.mark.parametrize("replay", [True, False])
async def test_drop_after_frames_and_what_a_reconnect_gets(
        call_01: list[bytes], replay: bool) -> None:
    async with serving(call_01, drop_after_frames=4, replay_on_reconnect=replay) as (peer, port):
        async with raw_client(port) as first:
            await first.login()
            assert await first.frames_until_closed() == call_01[:4]
        async with raw_client(port) as second:
            await second.login()
            expected = call_01[:4] if replay else call_01[4:8]
            assert await second.frames_until_closed() == expected
        assert peer.connections == 2 and peer.frames_sent == 8


async def test_filter_events_sends_only_the_classes_asked_for(call_01: list[bytes]) -> None:
    async with serving(call_01, filter_events=True, hold_open=False) as (_, port):
        async with raw_client(port) as client:
            await client.login(Events="call")
            got = await client.frames_until_closed()
    assert got == [f for f in call_01 if b"Privilege: call," in f or b"FullyBooted" in f]
    assert not any(event_name(f) == "Cdr" for f in got)


async def test_stop_closes_clients_and_the_port(call_01: list[bytes]) -> None:
    peer = AmiPeer(call_01, username=USER, secret=SECRET)
    port = await peer.start()
    async with raw_client(port) as client:
        await client.login()
        await peer.wait_done()
        await peer.stop()
        assert len(await client.frames_until_closed()) == len(call_01)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_disconnect_clients_closes_sessions_but_keeps_listening(
        call_01: list[bytes]) -> None:
    async with serving(call_01) as (peer, port):
        async with raw_client(port) as client:
            await client.login()
            await peer.wait_done()
            await peer.disconnect_clients()
            assert len(await client.frames_until_closed()) == len(call_01)
        assert peer.open_connections == 0
        async with raw_client(port) as again:
            assert b"Authentication accepted" in await again.login()
