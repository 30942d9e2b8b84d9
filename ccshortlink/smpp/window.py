"""Which SMS parts may go out now: submit window, rate cap, throttling backoff (no I/O)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from ccshortlink.core.sms import EncodedSms

THROTTLE_FIRST_DELAY = 0.05
THROTTLE_MAX_DELAY = 2.0


@dataclass(eq=False)
class Submission:
    """One SMS handed over by the loop; its future gets one message_id per part."""

    destination: str
    sms: EncodedSms
    future: asyncio.Future[list[str]]
    message_ids: list[str | None]
    abandoned: bool = False  # set on the loop when the caller stops waiting
    settled: bool = False  # I/O thread only


@dataclass(eq=False)
class Part:
    submission: Submission
    index: int
    sent_at: float = 0.0

    @property
    def live(self) -> bool:
        return not (self.submission.settled or self.submission.abandoned)


class SubmitWindow:
    """Parts waiting to be sent and parts awaiting submit_sm_resp, keyed by sequence number."""

    def __init__(self, window: int, max_per_second: float) -> None:
        self._window = window
        self._interval = 1.0 / max_per_second
        self._ready: deque[Part] = deque()
        self._inflight: dict[int, Part] = {}
        self._next_slot = 0.0
        self._throttled_until = 0.0
        self._throttle_started = float("-inf")
        self._throttle_delay = THROTTLE_FIRST_DELAY
        self._throttle_reported = False

    @property
    def queued(self) -> int:
        return len(self._ready)

    def add(self, submission: Submission) -> None:
        self._ready.extend(Part(submission, i) for i in range(len(submission.sms.parts)))

    def has_live_parts(self) -> bool:
        return any(part.live for part in [*self._ready, *self._inflight.values()])

    def next_due(self, now: float) -> Part | None:
        """The next part to send at `now`, if the window, rate cap and throttling allow one."""
        while self._ready and len(self._inflight) < self._window:
            if now < self._throttled_until or now < self._next_slot:
                return None
            part = self._ready.popleft()
            if part.live:
                return part
        return None

    def sent(self, sequence: int, part: Part, now: float) -> None:
        """Record `part` as in flight; called before sending so that no answer is lost."""
        part.sent_at = now
        self._inflight[sequence] = part
        self._next_slot = max(self._next_slot, now) + self._interval

    def awaits(self, sequence: int) -> bool:
        return sequence in self._inflight

    def answered(self, sequence: int) -> Part:
        return self._inflight.pop(sequence)

    def accepted(self, part: Part, message_id: str) -> list[str] | None:
        """Keep the part's message_id; every id of the submission once all parts are accepted."""
        self._throttle_delay, self._throttle_reported = THROTTLE_FIRST_DELAY, False
        submission = part.submission
        submission.message_ids[part.index] = message_id
        if None not in submission.message_ids:
            return [done for done in submission.message_ids if done is not None]
        return None

    def resend(self, part: Part) -> None:
        """Put a part the SMSC asked us to send again at the front of the queue."""
        if part.live:
            self._ready.appendleft(part)

    def starts_new_pause(self, part: Part) -> bool:
        # Parts sent before the current pause began are the same wave: one backoff step.
        return part.sent_at >= self._throttle_started

    def pause(self, now: float) -> float | None:
        """Stop sending for the current backoff, which doubles for the next wave (capped).

        Returns the backoff when this is the first pause since a part was last accepted."""
        backoff = self._throttle_delay
        self._throttle_started = now
        self._throttled_until = now + backoff
        self._throttle_delay = min(backoff * 2, THROTTLE_MAX_DELAY)
        if self._throttle_reported:
            return None
        self._throttle_reported = True
        return backoff

    def next_send_at(self) -> float | None:
        """When the next waiting part may go, if there is one and room in the window."""
        if self._ready and len(self._inflight) < self._window:
            return max(self._next_slot, self._throttled_until)
        return None

    def oldest_sent_at(self) -> float | None:
        if not self._inflight:
            return None
        return min(part.sent_at for part in self._inflight.values())

    def requeue_unacknowledged(self) -> int:
        """The connection is gone: queue every live unacknowledged part first, in sent order."""
        unacknowledged = [part for _, part in sorted(self._inflight.items()) if part.live]
        self._inflight.clear()
        self._ready.extendleft(reversed(unacknowledged))
        return len(unacknowledged)

    def clear(self) -> list[Part]:
        """Empty the window; every part it held, in flight first."""
        parts = [*self._inflight.values(), *self._ready]
        self._inflight.clear()
        self._ready.clear()
        return parts
