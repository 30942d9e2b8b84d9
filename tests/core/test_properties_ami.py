"""Properties of the AMI framing: any split of real bytes gives the same events; no input raises."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.support.amikit import fed
from tests.support.transcripts import FIXTURES

RECORDINGS = sorted(p.name for p in FIXTURES.glob("0*.txt"))
BANNER = b"Asterisk Call Manager/9.0.0\r\n"


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as run:
        yield run


def events_of(runner: asyncio.Runner, chunks: list[bytes]) -> list[dict[str, str]]:
    """Feed `chunks` to a fresh protocol, one read each; the events it delivered, in order."""
    async def feed() -> list[dict[str, str]]:
        return fed(chunks)[0]  # on a running loop, as the protocol expects
    with capture_logs():
        return runner.run(feed())


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("name", RECORDINGS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.lists(st.integers(min_value=0), max_size=60))
def test_any_split_of_a_recording_gives_the_same_events(
        runner: asyncio.Runner, name: str, points: list[int]) -> None:
    data = (FIXTURES / name).read_bytes()
    whole = events_of(runner, [data])
    assert len(whole) > 3 and all("Event" in e for e in whole)
    assert events_of(runner, cut(data, points)) == whole


@settings(max_examples=60, deadline=None)
@given(points=st.lists(st.integers(min_value=0), max_size=40))
def test_byte_by_byte_utf8_and_bare_lf_frames_still_give_the_same_events(
        runner: asyncio.Runner, points: list[int]) -> None:
    frame = "Event: Newchannel\r\nCallerIDName: 王小梅\r\nUniqueid: 1795460028.0\r\n\r\n"
    data = BANNER + (frame + frame.replace("\r\n", "\n")).encode()
    expected = [{"Event": "Newchannel", "CallerIDName": "王小梅", "Uniqueid": "1795460028.0"}] * 2
    assert events_of(runner, cut(data, points)) == expected


@settings(max_examples=300, deadline=None)
@given(noise=st.lists(st.binary(max_size=200), max_size=12), banner=st.booleans())
def test_arbitrary_bytes_never_raise_out_of_the_parser(
        runner: asyncio.Runner, noise: list[bytes], banner: bool) -> None:
    events = events_of(runner, ([BANNER] if banner else []) + noise)
    assert all(isinstance(e, dict) and "Event" in e for e in events)


header_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(header_text, st.sampled_from([": ", ":", " "]), header_text),
                      max_size=20),
       terminators=st.lists(st.sampled_from(["\r\n", "\n", "\r\n\r\n", "\n\n", "\r"]),
                            max_size=20))
def test_arbitrary_header_lines_never_raise(
        runner: asyncio.Runner, lines: list[tuple[str, str, str]], terminators: list[str]) -> None:
    text = "".join(f"{name}{sep}{value}{terminators[i] if i < len(terminators) else chr(10)}"
                   for i, (name, sep, value) in enumerate(lines))
    events_of(runner, [BANNER, text.encode("utf-8", "surrogatepass")])


@pytest.mark.parametrize("frame", [
    b"Response: Follows\r\nevent: Shutdown\r\n\r\n",
    b"Response: Success\r\nActionID: nobody-asked\r\n\r\n",
    b"response: Error\r\nEVENT: x\r\n\r\n",
])
def test_odd_responses_are_not_a_crash(runner: asyncio.Runner, frame: bytes) -> None:
    events_of(runner, [BANNER, frame])
