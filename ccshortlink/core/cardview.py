"""What the card shows: the agent's YAML record merged with live figures (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from ccshortlink.core.agents import Agent, Review, ServiceRecord
from ccshortlink.core.records import AgentLiveStats, RatingView

MAX_COMMENT = 280
# Bounds that keep the page inside its 14 KB budget whatever the YAML holds.
MAX_RECORDS = 3
MAX_REVIEWS = 3
MAX_REVIEW_CHARS = 280

_TEL_KEEP = re.compile(r"[^0-9+*#,;=a-zA-Z().-]")


def tel_uri(phone: str) -> str:
    """An RFC 3966 tel: URI that phones dial as written: keeps pauses (',') and ';ext='."""
    compact = _TEL_KEEP.sub("", phone)
    # '#' would start a URI fragment; RFC 3966 wants it percent-encoded
    return "tel:" + compact.replace("#", "%23")


@dataclass(frozen=True)
class Satisfaction:
    score: float | None  # None: nobody has rated yet
    votes: int

    @property
    def stars(self) -> int:
        """Whole stars to draw, rounded half up."""
        return 0 if self.score is None else int(self.score + 0.5)


def merge_satisfaction(agent: Agent, live: AgentLiveStats) -> Satisfaction:
    """Average of the static score (weighted by its votes) and every live rating."""
    static_votes = agent.satisfaction_votes if agent.satisfaction is not None else 0
    # A static score with no vote count still counts, as one vote, so it is shown.
    if agent.satisfaction is not None and static_votes == 0:
        static_votes = 1
    total_votes = static_votes + live.rating_count
    if total_votes == 0:
        return Satisfaction(score=None, votes=0)
    shown_votes = agent.satisfaction_votes + live.rating_count
    static_sum = (agent.satisfaction or 0.0) * static_votes
    return Satisfaction(score=(static_sum + live.rating_sum) / total_votes, votes=shown_votes)


@dataclass(frozen=True)
class CardView:
    """Everything the card template needs; never the customer's number."""

    agent: Agent
    satisfaction: Satisfaction
    calls_handled: int
    customers_served: int
    records: tuple[ServiceRecord, ...]
    reviews: tuple[Review, ...]
    tel: str


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_card(agent: Agent, live: AgentLiveStats, ratings: list[RatingView],
               zone: tzinfo) -> CardView:
    """Merge YAML baselines with live counts; newest page reviews first, then YAML ones."""
    page_reviews = [
        Review(stars=r.stars, text=_clip(r.comment, MAX_REVIEW_CHARS),
               date=datetime.fromtimestamp(r.created_at, zone).strftime("%Y-%m-%d"))
        for r in ratings
    ]
    yaml_reviews = [Review(stars=r.stars, text=_clip(r.text, MAX_REVIEW_CHARS),
                           author=_clip(r.author, 40), date=r.date) for r in agent.reviews]
    records = tuple(
        ServiceRecord(title=_clip(r.title, 80), detail=_clip(r.detail, 160), date=r.date[:20])
        for r in agent.service_records[:MAX_RECORDS]
    )
    shown = replace(agent, name=_clip(agent.name, 40), title=_clip(agent.title, 40),
                    slogan=_clip(agent.slogan, 100))
    return CardView(
        agent=shown,
        satisfaction=merge_satisfaction(agent, live),
        calls_handled=agent.calls_handled + live.calls_handled,
        customers_served=agent.customers_served + live.customers_served,
        records=records,
        reviews=tuple((page_reviews + yaml_reviews)[:MAX_REVIEWS]),
        tel=tel_uri(agent.phone),
    )


def clean_comment(text: str) -> str:
    """Trim and drop control characters other than newlines from a customer's comment."""
    kept = "".join(ch for ch in text.replace("\r\n", "\n") if ch == "\n" or ch.isprintable())
    return kept.strip()
