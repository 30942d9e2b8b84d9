"""The SMPP I/O thread's mailbox: typed requests from the loop, and a pipe that wakes select()."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
from dataclasses import dataclass
from typing import Any

from ccshortlink.smpp.window import Submission


@dataclass(frozen=True, slots=True)
class Submit:
    """Send every part of this SMS; its future is settled by the I/O thread."""

    submission: Submission


@dataclass(frozen=True, slots=True)
class Close:
    """Finish what is in flight until `deadline` (the thread's clock), unbind and stop."""

    deadline: float


@dataclass(frozen=True, slots=True)
class AnswerDeliver:
    """Answer a deliver_sm now that its handler on the loop is done (0: handled)."""

    generation: int  # the bind it arrived on: an answer owed on an older one is moot
    sequence: int
    status: int


Request = Submit | Close | AnswerDeliver


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Complete `future` with `error` or `result` unless it is done already (on the loop)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Mailbox:
    """Requests from the loop to the I/O thread: a queue, and a pipe whose byte wakes select()."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)

    def put(self, request: Request) -> None:
        """Queue a request and wake the I/O thread (any thread)."""
        self._requests.put(request)
        # A full pipe means the thread is awake already; a closed one, that it is gone.
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def take(self) -> Request | None:
        try:
            return self._requests.get_nowait()
        except queue.Empty:
            return None

    def clear_wakeups(self) -> None:
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        for fd in (self.wake_fd, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.wake_fd = self._wake_w = -1
