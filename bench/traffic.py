"""Real-shaped AMI traffic: recorded calls rewritten for distinct customers, paced on a timeline."""

from __future__ import annotations

import asyncio
import bisect
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccshortlink.peers.amipeer import AmiPeer, event_name, read_transcript, rewrite_call

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
# An answered direct call and an answered queue call (ring-all over two agents): both must
# end in exactly one SMS to the customer.
SOURCES = ("01-sip-answered-customer-hangup.txt", "04-queue-sip-members-answered.txt")
# A call nobody answers: the daemon reads and tracks it, and sends nothing.
ABANDONED = ("03-sip-ring-no-answer-abandon.txt",)
AMI_USER, AMI_SECRET = "ccshortlink", "bench-secret"
# Frames written in one go at most: keeps a late peer from building one huge write.
MAX_BATCH = 512


def customer_number(index: int) -> str:
    """A distinct, valid Chinese mobile number for every call index."""
    return f"+86139{index:08d}"


@dataclass(frozen=True)
class Call:
    index: int
    customer_number: str
    frames: tuple[bytes, ...]

    @property
    def last_hangup(self) -> int:
        """Position of the call's last Hangup frame: the moment the call is over."""
        return max(i for i, f in enumerate(self.frames) if event_name(f) == "Hangup")

    @property
    def teardown(self) -> int:
        """Position of the first frame of the hang-up (what follows the talk)."""
        return next(i for i, f in enumerate(self.frames) if event_name(f) == "HangupRequest")


class CallBook:
    """Builds calls on demand and keeps them: rewriting costs ~2.5 ms a call."""

    def __init__(self, sources: tuple[str, ...] = SOURCES) -> None:
        self.banner = b""
        self._sources: list[list[bytes]] = []
        for name in sources:
            self.banner, frames = read_transcript(FIXTURES / name)
            # FullyBooted belongs to a login, not to a call.
            self._sources.append([f for f in frames if event_name(f) != "FullyBooted"])
        self._calls: list[Call] = []

    @property
    def events_per_call(self) -> float:
        return sum(len(s) for s in self._sources) / len(self._sources)

    def calls(self, count: int, first: int = 0) -> list[Call]:
        while len(self._calls) < first + count:
            index = len(self._calls)
            number = customer_number(index)
            frames = rewrite_call(self._sources[index % len(self._sources)], index=index,
                                  customer_number=number)
            self._calls.append(Call(index, number, tuple(frames)))
        return self._calls[first:first + count]


@dataclass
class Timeline:
    """Every frame of every call with the time (s from the start) it is due."""

    calls: list[Call]
    at: list[float] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    call_of: list[int] = field(default_factory=list)  # position in `calls` for each frame
    ends: dict[int, int] = field(default_factory=dict)  # frame position -> call that it ends

    @property
    def duration(self) -> float:
        return self.at[-1] if self.at else 0.0

    @property
    def events(self) -> int:
        return len(self.frames)

    def stream(self, banner: bytes) -> bytes:
        return banner + b"".join(self.frames)


def timeline(calls: list[Call], rate: float, *, ring: float = 0.5, talk: float = 1.5,
             seed: int = 1) -> Timeline:
    """Calls start at `rate` per second; each rings for `ring` s, talks ~`talk` s, hangs up.

    Set-up frames are spread over the ring time, the hang-up frames follow the talk 1 ms
    apart, so about rate x (ring + talk) calls are in progress at once, interleaved.
    """
    rng = random.Random(seed)
    entries: list[tuple[float, int, int]] = []
    for n, call in enumerate(calls):
        start = n / rate
        split = call.teardown
        ends_at = start + ring + talk * rng.uniform(0.5, 1.5)
        for k in range(len(call.frames)):
            due = start + ring * k / split if k < split else ends_at + 0.001 * (k - split)
            entries.append((due, n, k))
    entries.sort()
    result = Timeline(calls)
    last = {n: call.last_hangup for n, call in enumerate(calls)}
    for position, (due, n, k) in enumerate(entries):
        result.at.append(due)
        result.frames.append(calls[n].frames[k])
        result.call_of.append(n)
        if k == last[n]:
            result.ends[position] = n
    return result


class PacedAmiPeer(AmiPeer):
    """An AmiPeer that writes each frame when the timeline says, and notes when calls end.

    A new connection resumes where the last one stopped (as Asterisk would not, but as a
    benchmark needs); frames due while nobody was connected go out at once on the next login.
    """

    def __init__(self, line: Timeline, banner: bytes) -> None:
        super().__init__(line.frames, username=AMI_USER, secret=AMI_SECRET, banner=banner,
                         replay_on_reconnect=False)
        self.line = line
        self.hangup_written: dict[int, float] = {}  # call position -> wall clock
        self.sessions_of: list[set[str]] = [set() for _ in line.calls]
        self.session_label = "1"  # which daemon process is connected: set by the soak
        self.max_lag = 0.0
        self.started_at: float | None = None  # loop time of the timeline's zero
        self.first_write: float | None = None

    async def _send_frames(self, writer: asyncio.StreamWriter, lock: asyncio.Lock,
                           events: str) -> None:
        label = self.session_label  # the process logged in now, not whoever logs in next
        line = self.line

        def book(first: int, end: int, wall: float) -> None:
            for p in range(first, end):
                n = line.call_of[p]
                self.sessions_of[n].add(label)
                if p in line.ends:
                    self.hangup_written[n] = wall
            self._position = end

        await self._write_paced(writer, lock, self._position, book)

    async def _write_paced(self, writer: asyncio.StreamWriter, lock: asyncio.Lock,
                           position: int, book: Callable[[int, int, float], None]) -> None:
        """Write the timeline's frames from `position` on as they fall due, in batches.

        `book(first, end, wall)` is told of each batch (frames first..end-1) as it is written.
        """
        loop = asyncio.get_running_loop()
        line = self.line
        if self.started_at is None:
            self.started_at = loop.time()
            self.first_write = time.time()
        try:
            while position < len(line.frames):
                elapsed = loop.time() - self.started_at
                due = bisect.bisect_right(line.at, elapsed, position)
                if due == position:
                    await asyncio.sleep(line.at[position] - elapsed)
                    continue
                due = min(due, position + MAX_BATCH)
                if writer.is_closing():
                    return  # dropped: a resuming peer's next connection starts from `position`
                async with lock:
                    writer.write(b"".join(line.frames[position:due]))
                book(position, due, time.time())
                self.max_lag = max(self.max_lag, elapsed - line.at[due - 1])
                self.frames_sent += due - position
                position = due
                await writer.drain()
            self.replays_completed += 1
            self._notify()
        except ConnectionError:
            writer.close()
