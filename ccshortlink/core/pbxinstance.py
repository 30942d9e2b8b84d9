"""Tells a restarted Asterisk from a reconnect to the same one, from what AMI shows; pure.

Two clues, so that it works with or without the `system` read privilege:

* `FullyBooted` (sent at login only to users that may read `system` events, and broadcast
  when Asterisk finishes booting) carries `Uptime`: now minus uptime is when this Asterisk
  started. After a reconnect, a start later than the one seen before by more than
  UPTIME_TOLERANCE is a new instance; a reload changes `LastReload`, not `Uptime`.
* Uniqueids are `[system-name-]epoch.counter`: the counter counts channels since Asterisk
  started and only ever grows within one instance, and the epoch (the second the channel was
  made) is taken with it. After the AMI session was lost, a new channel whose counter is not
  above the highest seen, while its epoch is no earlier than any channel seen, comes from an
  Asterisk that counted from 0 again. The same second counts: a small Asterisk killed and
  started again boots within it, and then even repeats the old Uniqueids. A reconnect to the
  same Asterisk cannot show such a channel: a new session gets only the events queued after
  its login, and every channel made by then counts above those seen before the session was
  lost. (A new instance that made more channels than the old one before we got back in is
  not told by this clue: `FullyBooted`, with the `system` read privilege, tells it.)
"""

from __future__ import annotations

import math

UPTIME_TOLERANCE = 3.0  # Uptime is whole seconds, plus the time the login took


def parse_uniqueid(value: str) -> tuple[int, int] | None:
    """(epoch, counter) of an Asterisk Uniqueid; None for one set by the dialplan or AMI."""
    head, dot, counter = value.rpartition(".")
    epoch = head.rpartition("-")[2]
    if not dot or not epoch.isdigit() or not counter.isdigit():
        return None
    return int(epoch), int(counter)


class InstanceWatch:
    """Remembers what identifies the Asterisk instance; each method says if it just changed."""

    def __init__(self) -> None:
        self._started_at: float | None = None  # on the caller's monotonic clock
        self._highest: tuple[int, int] | None = None  # (latest epoch, highest counter)

    def fully_booted(self, uptime: str, now: float, *, after_reconnect: bool) -> bool | None:
        """A FullyBooted's Uptime seen at `now`: True for a new instance, False for the same.

        None when it says nothing: the first one, or one inside a session (a recorded
        transcript spliced from several sessions, or the broadcast at the end of a boot).
        """
        try:
            seconds = float(uptime)
        except ValueError:
            return None
        if not math.isfinite(seconds) or seconds < 0:
            return None
        started, previous = now - seconds, self._started_at
        self._started_at = started
        if previous is None or not after_reconnect:
            return None
        if started - previous > UPTIME_TOLERANCE:
            self._highest = None  # the new instance counts channels from 0
            return True
        return False

    def new_channel(self, uniqueid: str, *, after_reconnect: bool) -> bool | None:
        """A Newchannel's Uniqueid: True for a new instance, False for the same, None: no clue.

        Only after a reconnect does a lower counter mean a restart: a restart always drops the
        session, and in one session Asterisk's own channels only count up.
        """
        parsed = parse_uniqueid(uniqueid)
        if parsed is None:
            return None
        epoch, counter = parsed
        if self._highest is None:
            self._highest = parsed
            return False  # nothing to compare with: as far as we know, the same
        latest_epoch, highest_counter = self._highest
        if counter > highest_counter or not after_reconnect:
            self._highest = (max(epoch, latest_epoch), max(counter, highest_counter))
            return False
        if epoch >= latest_epoch:  # counted from 0 again, no earlier than any channel seen
            self._highest = parsed
            self._started_at = None  # a FullyBooted broadcast later is this instance's
            return True
        return None
