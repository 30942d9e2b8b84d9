"""A busy load like the daemon's: AMI-like parsing on the loop and on a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Self

# The busy load: a thread parsing 2 ms of every 3 (the SMPP thread), the loop 1 ms of every 3
# (AMI parsing); never longer than LOAD_LIMIT_S, even if nobody stops it.
THREAD_WORK_S, THREAD_REST_S = 0.002, 0.001
LOOP_WORK_S, LOOP_REST_S = 0.001, 0.002
LOAD_LIMIT_S = 600.0
CALIBRATE_S = 0.5  # the idle run that prices the loop's wake-ups for the load
AMI_FRAME = ("Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/1001-0000002a\r\n"
             "ChannelState: 6\r\nCallerIDNum: 13912345678\r\nConnectedLineNum: 1001\r\n"
             "Uniqueid: 1700000000.42\r\nLinkedid: 1700000000.41\r\nCause: 16\r\n"
             "Cause-txt: Normal Clearing\r\n\r\n")


def _parse_ami(seconds: float) -> int:
    """Parse the canned AMI frame over and over for `seconds` (pure Python: holds the GIL).

    Returns the headers parsed.
    """
    end = time.perf_counter() + seconds
    headers = 0
    while time.perf_counter() < end:
        for _ in range(10):  # a few frames per clock read, so the clock is not the work
            headers += len({name: value for name, _, value in
                            (line.partition(": ") for line in AMI_FRAME.rstrip().split("\r\n"))})
    return headers


class BusyLoad:
    """AMI-like parsing on the loop and on a thread of its own while a variant is measured."""

    def __init__(self, enabled: bool, wake_cost: float = 0.0) -> None:
        self.enabled = enabled
        self.wake_cost = wake_cost  # the loop's CPU per wake-up of the load, see `calibrate`
        self.wakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._thread_load, name="busy-load", daemon=True)
        self._task: asyncio.Task[None] | None = None
        self._thread_cpu = 0.0
        self._loop_cpu = 0.0

    @property
    def work_seconds(self) -> float:
        """CPU time of the load's parsing on both threads (complete once stopped)."""
        return self._thread_cpu + self._loop_cpu

    @property
    def cpu_seconds(self) -> float:
        """The load's own CPU time: its parsing, plus the loop waking up for it."""
        return self.work_seconds + self.wakes * self.wake_cost

    async def __aenter__(self) -> Self:
        if self.enabled:
            self._thread.start()
            self._task = asyncio.create_task(self._loop_load())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread.ident is not None:
            self._thread.join()

    def _thread_load(self) -> None:
        """Work THREAD_WORK_S, rest THREAD_REST_S, until stopped or LOAD_LIMIT_S is up."""
        deadline = time.monotonic() + LOAD_LIMIT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            _parse_ami(THREAD_WORK_S)
            self._stop.wait(THREAD_REST_S)
        self._thread_cpu = time.thread_time()  # this thread's CPU since it started

    async def _loop_load(self) -> None:
        """Work LOOP_WORK_S, rest LOOP_REST_S, on the loop's thread until cancelled."""
        deadline = time.monotonic() + LOAD_LIMIT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            # Per chunk, on this thread's clock: the measured work shares this thread.
            started = time.thread_time()
            _parse_ami(LOOP_WORK_S)
            self._loop_cpu += time.thread_time() - started
            self.wakes += 1
            await asyncio.sleep(LOOP_REST_S)

    @classmethod
    async def calibrate(cls) -> float:
        """The loop's CPU per wake-up of the load beyond its parsing, measured with no other work.

        A timer wake-up of asyncio costs tens of microseconds here, a few percent of a core
        at this rate: left in, it would be charged to whichever variant runs longest.
        """
        load = cls(True)
        cpu = time.process_time()
        async with load:
            await asyncio.sleep(CALIBRATE_S)
        spent = time.process_time() - cpu - load.work_seconds
        return max(0.0, spent / max(1, load.wakes))
