"""What the reports hand the CLI: a trace's story and a period's figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TraceEvent:
    """One line of a story: when, what (`kind`), and the facts that go with it."""

    at: float
    kind: str
    facts: dict[str, Any]


@dataclass(frozen=True)
class Trace:
    """The story of a customer, a link or a call, oldest first."""

    subject: str  # customer | link | call
    key: str  # the E.164 number, the code or the linkedid
    events: list[TraceEvent]
    links: list[dict[str, Any]] = field(default_factory=list)
    sms: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Figures:
    """What happened in one period, for everyone or for one agent."""

    calls_decided: int = 0
    skipped: int = 0
    sms_sent: int = 0  # accepted by the SMSC
    sms_delivered: int = 0
    sms_failed: int = 0  # failed or expired
    sms_waiting: int = 0  # queued, deferred or being submitted
    links_opened: int = 0
    called_back: int = 0  # links whose card's call button was tapped
    callbacks_connected: int = 0  # call-backs ("call me back") in which the customer answered
    ratings: int = 0
    rating_sum: int = 0

    @property
    def average_rating(self) -> float | None:
        return round(self.rating_sum / self.ratings, 2) if self.ratings else None

    def __add__(self, other: Figures) -> Figures:
        pairs = zip(self.__dict__.values(), other.__dict__.values(), strict=True)
        return Figures(*(a + b for a, b in pairs))

    def as_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(self.__dict__)
        del figures["rating_sum"]
        figures["average_rating"] = self.average_rating
        return figures
