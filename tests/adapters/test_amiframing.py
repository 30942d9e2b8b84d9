"""AMI framing fed byte by byte and over TCP: split reads, unusual and bad frames, order."""

from __future__ import annotations

import pytest
from panoramisk.actions import Action
from structlog.testing import capture_logs

from ccshortlink.ami.client import AmiClient
from ccshortlink.ops.logs import get_logger
from ccshortlink.peers.amipeer import DEFAULT_BANNER
from tests.support.amikit import (
    WANG,
    Recorder,
    ami_config,
    cut,
    expected_events,
    fed,
    frames_of,
    named,
    running,
    serving,
    with_caller_name,
)


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
