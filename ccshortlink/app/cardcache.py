"""Each agent's live figures for the card, reused briefly so page views don't rescan the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ccshortlink.app.ports import AgentFiguresStore
from ccshortlink.app.singleflight import SingleFlight
from ccshortlink.core.records import AgentLiveStats, RatingView


@dataclass(frozen=True)
class AgentFigures:
    live: AgentLiveStats
    ratings: list[RatingView]
    fetched_at: float


class AgentFiguresCache:
    """Live stats and recent ratings per agent, kept `ttl` seconds, one load in flight per agent.

    Counting an agent's calls grows with the history kept; a popular agent's cards would
    repeat the same aggregate hundreds of times a second. A rating made on this server
    forgets the agent at once, so the customer who rated sees the new average.
    """

    def __init__(self, store: AgentFiguresStore, clock: Callable[[], float], *, ttl: float = 30.0,
                 ratings_shown: int = 3) -> None:
        self._store = store
        self._clock = clock
        self.ttl = ttl
        self._ratings_shown = ratings_shown
        self._entries: dict[str, AgentFigures] = {}
        self._loading: SingleFlight[str, AgentFigures] = SingleFlight()
        self._generation: dict[str, int] = {}

    def fresh(self, agent_id: str) -> AgentFigures | None:
        """The agent's figures if they are still fresh, without waiting for anything."""
        entry = self._entries.get(agent_id)
        if entry is not None and entry.fetched_at > self._clock() - self.ttl:
            return entry
        return None

    async def get(self, agent_id: str) -> AgentFigures:
        entry = self.fresh(agent_id)
        if entry is not None:
            return entry
        return await self._loading.load(agent_id, lambda: self._load(agent_id))

    async def _load(self, agent_id: str) -> AgentFigures:
        generation = self._generation.get(agent_id, 0)
        fetched_at = self._clock()
        figures = AgentFigures(live=await self._store.agent_live_stats(agent_id),
                               ratings=await self._store.recent_ratings(agent_id,
                                                                        self._ratings_shown),
                               fetched_at=fetched_at)
        if self._generation.get(agent_id, 0) == generation:  # not forgotten meanwhile
            self._entries[agent_id] = figures
        return figures

    def forget(self, agent_id: str) -> None:
        """Drop the agent's figures (and any load already under way) after a change."""
        self._generation[agent_id] = self._generation.get(agent_id, 0) + 1
        self._entries.pop(agent_id, None)
        self._loading.forget(agent_id)
