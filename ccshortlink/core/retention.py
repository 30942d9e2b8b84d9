"""Data retention, the pure part: the cutoff and the daily schedule (numbers: core.privacy)."""

from __future__ import annotations

DAY = 86400.0


def retention_cutoff(now: float, days: float) -> float:
    """Records older than this are deleted or anonymised."""
    return now - days * DAY


class RetentionSchedule:
    """At most one run per `every` seconds: the first housekeeping tick, then once a day."""

    def __init__(self, days: float, every: float = DAY) -> None:
        self.days = days
        self.every = every
        self.last_run: float | None = None

    def due(self, now: float) -> bool:
        # abs(): a clock stepped back a little must not make the job run twice in one day,
        # and one stepped back a long way must not stop it for that long.
        return self.last_run is None or abs(now - self.last_run) >= self.every

    def cutoff(self, now: float) -> float:
        return retention_cutoff(now, self.days)

    def done(self, now: float) -> None:
        self.last_run = now
