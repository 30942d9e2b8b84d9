"""AMI ingest ceiling: AmiProtocol + CallTracker vs panoramisk's bare parser on the same bytes.

Run: .venv/bin/python -m bench ingest [--calls 2000] [--repeats 5]
One process, pinned to one core; the two parsers take turns (A B A B ...) so that a noisy
neighbour slows both alike, and the ratio is taken within each turn.
Then the same inside the real daemon: unanswered calls (no SMS, no database work) over a real
socket, and the event-loop thread's CPU time per AMI event.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from bench.daemon_process import OPEN_SMPP, cpu_seconds, running_daemon
from bench.peers import SmscProcess
from bench.report import median, table
from bench.traffic import ABANDONED, CallBook, PacedAmiPeer, timeline
from ccshortlink.ami.client import AmiProtocol
from ccshortlink.core.calls import CallEnded, CallTracker, default_agent_lookup
from ccshortlink.ops.logs import get_logger

# Socket reads: one frame per read (Asterisk writes each event on its own, so a reader that
# keeps up sees this), one TCP segment, a modest read, and asyncio's largest (256 KiB).
ONE_FRAME = 0
CHUNKS = (ONE_FRAME, 1460, 16 * 1024, 256 * 1024)
AGENT_EXTENSIONS = frozenset({"1001", "1002"})
DAEMON_RATES = (100, 400)
DAEMON_SECONDS = 10.0


class _Transport:
    """Just enough of a transport for a protocol that is only ever fed bytes."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _NoDispatch:
    """panoramisk's Manager stand-in: dispatch does nothing (the bare parser's cost only)."""

    save_stream = None

    def __init__(self) -> None:
        self.events = 0

    def dispatch(self, message: Any) -> None:
        self.events += 1


def _reads(stream: bytes, chunk: int) -> list[bytes]:
    if chunk == ONE_FRAME:
        banner, _, rest = stream.partition(b"\r\n")
        return [banner + b"\r\n", *(f + b"\r\n\r\n" for f in rest.split(b"\r\n\r\n")[:-1])]
    return [stream[offset:offset + chunk] for offset in range(0, len(stream), chunk)]


def _feed(data_received: Callable[[bytes], None], stream: bytes, chunk: int) -> float:
    reads = _reads(stream, chunk)  # cut before the clock starts: a socket hands them over
    start = time.process_time()
    for data in reads:
        data_received(data)
    return time.process_time() - start


def bare_parser(stream: bytes, chunk: int) -> tuple[float, int]:
    protocol = AMIProtocol()
    protocol.connection_made(_Transport())
    factory = _NoDispatch()
    protocol.factory = factory
    seconds = _feed(protocol.data_received, stream, chunk)
    return seconds, factory.events


class SplitFraming:
    """A sketch, not product code: AmiProtocol's framing done with one split per read.

    Same output (header names as sent, repeated headers joined with a newline); it skips the
    per-header name check and handles bare-LF peers by normalising, and exists to estimate
    what a rewrite of AmiProtocol.data_received/_handle_frame would gain.
    """

    def __init__(self, on_event: Callable[[dict[str, str]], object]) -> None:
        self._on_event = on_event
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._banner = False

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + self._decoder.decode(data)
        if not self._banner:
            banner, sep, buffer = buffer.partition("\r\n")
            self._banner = bool(sep)
        if "\n\n" in buffer:
            buffer = buffer.replace("\r\n", "\n").replace("\n", "\r\n")
        *frames, self._buffer = buffer.split("\r\n\r\n")
        for frame in frames:
            headers: dict[str, str] = {}
            for line in frame.split("\r\n"):
                name, colon, value = line.partition(":")
                if not colon:
                    break
                if value[:1] == " ":
                    value = value[1:]
                headers[name] = f"{headers[name]}\n{value}" if name in headers else value
            else:
                if "Event" in headers:
                    self._on_event(headers)


def tracker_path(stream: bytes, chunk: int, *, sketch: bool = False) -> tuple[float, int, int]:
    """AmiProtocol framing + CallTracker, as the daemon wires them; (seconds, events, calls)."""
    tracker = CallTracker(default_agent_lookup(AGENT_EXTENSIONS.__contains__))
    ended = 0
    clock = time.monotonic

    def on_event(event: dict[str, str]) -> None:
        nonlocal ended
        for outcome in tracker.handle(event, clock()):
            ended += isinstance(outcome, CallEnded)

    if sketch:
        seconds = _feed(SplitFraming(on_event).data_received, stream, chunk)
        return seconds, tracker.events_seen, ended
    protocol = AmiProtocol(on_event, get_logger())
    protocol.connection_made(_Transport())
    seconds = _feed(protocol.data_received, stream, chunk)
    return seconds, tracker.events_seen, ended


async def measure(calls: int, repeats: int) -> tuple[list[list[str]], dict[str, Any]]:
    book = CallBook()
    line = timeline(book.calls(calls), rate=1000)
    stream = line.stream(book.banner)
    rows = []
    facts: dict[str, Any] = {"events": line.events, "bytes": len(stream), "calls": calls}
    for chunk in CHUNKS:
        ours, bare, ratios, sketch = [], [], [], []
        for _ in range(repeats):
            t_ours, events, ended = tracker_path(stream, chunk)
            t_bare, bare_events = bare_parser(stream, chunk)
            t_sketch, sketch_events, sketch_ended = tracker_path(stream, chunk, sketch=True)
            if {events, bare_events, sketch_events} != {line.events} or \
                    {ended, sketch_ended} != {calls}:
                raise RuntimeError(f"parsers disagree: {events}/{bare_events}/{sketch_events} "
                                   f"events of {line.events}, {ended} calls ended of {calls}")
            ours.append(events / t_ours)
            bare.append(events / t_bare)
            ratios.append(t_ours / t_bare)
            sketch.append(events / t_sketch)
        rows.append(["one frame" if chunk == ONE_FRAME else f"{chunk:,}", f"{median(ours):,.0f}",
                     f"{median(bare):,.0f}", f"{median(ratios):.2f}",
                     "yes" if median(ratios) <= 2.0 else "no", f"{median(sketch):,.0f}"])
    return rows, facts


HEADER = ["read size (bytes)", "AmiProtocol + CallTracker events/s", "panoramisk bare events/s",
          "time ratio (ours / bare)", "≤ 2× target met",
          "split-framing sketch + CallTracker events/s"]


async def in_daemon(book: CallBook, rate: float, seconds: float) -> tuple[float, float]:
    """(events/s the loop could take, µs of loop CPU per event) for unanswered calls."""
    line = timeline(book.calls(round(rate * seconds)), rate)
    with tempfile.TemporaryDirectory(prefix="ccshortlink-ingest-") as tmp:
        folder = Path(tmp)
        smsc = SmscProcess(folder, receipts=False)
        peer = PacedAmiPeer(line, book.banner)
        async with running_daemon(folder, smsc, peer, smpp=OPEN_SMPP) as running:
            daemon = running.daemon
            before = cpu_seconds(daemon.pid, daemon.pid)
            await peer.wait_done(timeout=seconds + 60)
            await asyncio.sleep(0.5)
            used = cpu_seconds(daemon.pid, daemon.pid) - before
    per_event = used / line.events
    return 1 / per_event, per_event * 1e6


def run(calls: int = 2000, repeats: int = 5) -> list[str]:
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(affinity)[-1]})  # one core, as asked
    rows, facts = asyncio.run(measure(calls, repeats))
    os.sched_setaffinity(0, affinity)
    lines = [f"{facts['calls']} calls, {facts['events']:,} events, {facts['bytes']:,} bytes; "
             f"median of {repeats} alternating runs; CPU time (process_time)", "",
             table(HEADER, rows), ""]
    book = CallBook(ABANDONED)
    daemon_rows = []
    for rate in DAEMON_RATES:
        found = [asyncio.run(in_daemon(book, rate, DAEMON_SECONDS)) for _ in range(3)]
        daemon_rows.append([f"{rate:g}", f"{rate * book.events_per_call:,.0f}",
                            f"{median([f[1] for f in found]):.0f}",
                            f"{median([f[0] for f in found]):,.0f}"])
    lines += [f"inside `ccshortlink run`: unanswered calls (fixture 03, "
              f"{book.events_per_call:g} events each) over 127.0.0.1 for {DAEMON_SECONDS:g} s; "
              "loop-thread CPU only; median of 3", "",
              table(["calls/s", "events/s", "loop CPU µs per event",
                     "events/s one loop could take"], daemon_rows)]
    return lines


def profile(calls: int) -> str:
    """pyinstrument's call tree of the tracker path over 16 KiB reads."""
    from pyinstrument import Profiler  # the bench extra; only needed here

    async def go() -> str:
        book = CallBook()
        stream = timeline(book.calls(calls), rate=1000).stream(book.banner)
        profiler = Profiler(interval=0.0005)
        profiler.start()
        tracker_path(stream, 16 * 1024)
        profiler.stop()
        return profiler.output_text(unicode=False, color=False)

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true",
                        help="only print pyinstrument's profile of AmiProtocol + CallTracker")
    args = parser.parse_args(argv)
    if args.profile:
        print(profile(args.calls))
        return 0
    for line in run(args.calls, args.repeats):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
