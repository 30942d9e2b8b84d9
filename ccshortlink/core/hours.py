"""Working hours: "Mon-Fri 09:00-18:00; Sat 10:00-14:00" read, checked and asked about."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"(?P<days>[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?(?:\s*,\s*[A-Za-z]{3}"
                   r"(?:\s*-\s*[A-Za-z]{3})?)*)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*"
                   r"(?P<end>\d{1,2}:\d{2})")


class HoursError(ValueError):
    """The text is not working hours; the message says what is wrong and where."""


@dataclass(frozen=True)
class Hours:
    """Opening spans per weekday (0 = Monday), minutes since midnight; empty = always open."""

    spans: tuple[tuple[int, int, int], ...] = ()  # (weekday, start minute, end minute)

    @property
    def always(self) -> bool:
        return not self.spans

    def is_open(self, at: float, zone: ZoneInfo) -> bool:
        if self.always:
            return True
        local = datetime.fromtimestamp(at, zone)
        minute = local.hour * 60 + local.minute
        return any(day == local.weekday() and start <= minute < end
                   for day, start, end in self.spans)

    def next_opening(self, at: float, zone: ZoneInfo) -> float | None:
        """When the hours next begin after `at` (epoch s); `at` itself when open now; None
        for hours that never open (impossible once parsed)."""
        if self.is_open(at, zone):
            return at
        local = datetime.fromtimestamp(at, zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for ahead in range(8):
            day = (midnight + timedelta(days=ahead)).date()
            starts = sorted(start for weekday, start, _ in self.spans
                            if weekday == day.weekday())
            for start in starts:
                opening = datetime(day.year, day.month, day.day, start // 60, start % 60,
                                   tzinfo=zone)
                if opening.timestamp() > at:
                    return opening.timestamp()
        return None


def parse_hours(text: str) -> Hours:
    """Hours from e.g. "Mon-Fri 09:00-18:00; Sat 10:00-14:00" ("" = always open)."""
    spans: list[tuple[int, int, int]] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        match = _PART.fullmatch(part)
        if match is None:
            raise HoursError(f"{part!r} is not like 'Mon-Fri 09:00-18:00'")
        start, end = _minute(match["start"], part), _minute(match["end"], part)
        if end <= start:
            raise HoursError(f"{part!r}: the end must come after the start")
        for day in _days(match["days"], part):
            spans.append((day, start, end))
    return Hours(tuple(sorted(spans)))


def check_hours(text: str) -> str | None:
    """None for good hours, else what is wrong (for the config's list of problems)."""
    try:
        parse_hours(text)
    except HoursError as exc:
        return str(exc)
    return None


def _minute(clock: str, part: str) -> int:
    hour, minute = (int(n) for n in clock.split(":"))
    if hour == 24 and minute == 0:
        return 24 * 60
    if hour > 23 or minute > 59:
        raise HoursError(f"{part!r}: {clock} is not a time of day")
    return hour * 60 + minute


def _day(name: str, part: str) -> int:
    try:
        return DAYS.index(name.strip().lower())
    except ValueError:
        raise HoursError(f"{part!r}: {name.strip()!r} is not a day (Mon ... Sun)") from None


def _days(text: str, part: str) -> list[int]:
    days: list[int] = []
    for item in text.split(","):
        first, dash, last = item.partition("-")
        begin = _day(first, part)
        end = _day(last, part) if dash else begin
        day = begin
        days.append(day)
        while day != end:  # "Sat-Mon" wraps over the week's end
            day = (day + 1) % 7
            days.append(day)
    return days
