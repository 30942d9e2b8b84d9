"""A small recording CallbackDesk for the web tests: answers as the test sets it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ccshortlink.core.records import CallbackView, PreferredAgent
from ccshortlink.core.vocab import CallbackState, Presence

NOBODY = PreferredAgent(extension=None, agent_id=None, available=None)


@dataclass
class FakeDesk:
    """Presence per agent, the latest call-back per code, the preferred agent per number.

    `request` answers `answer(code)` (by default a call-back placed at once) and makes it the
    link's latest; `set_state` moves a call-back on, as the PBX's events would."""

    clock: Callable[[], float]
    presences: dict[str, Presence] = field(default_factory=dict)
    latest_by_code: dict[str, CallbackView] = field(default_factory=dict)
    preferred: dict[str, PreferredAgent] = field(default_factory=dict)
    refuse: tuple[str, float | None] | None = None  # (reason, opens_at) for the next requests
    not_live: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    latest_asked: list[str] = field(default_factory=list)

    def presence(self, agent_id: str) -> Presence:
        return self.presences.get(agent_id, Presence.UNKNOWN)

    async def request(self, code: str) -> CallbackView | None:
        self.requests.append(code)
        if code in self.not_live:
            return None
        if self.refuse is not None:
            reason, opens_at = self.refuse
            view = CallbackView(id=len(self.requests), state=CallbackState.REFUSED,
                                reason=reason, requested_at=self.clock(), opens_at=opens_at)
        else:
            view = CallbackView(id=len(self.requests), state=CallbackState.CALLING_AGENT,
                                reason="", requested_at=self.clock())
        self.latest_by_code[code] = view
        return view

    async def latest(self, code: str) -> CallbackView | None:
        self.latest_asked.append(code)
        return self.latest_by_code.get(code)

    async def preferred_agent(self, number: str) -> PreferredAgent:
        self.lookups.append(number)
        return self.preferred.get(number, NOBODY)

    def set_state(self, code: str, state: CallbackState, *, reason: str = "",
                  talk_seconds: int | None = None, opens_at: float | None = None) -> None:
        before = self.latest_by_code.get(code)
        self.latest_by_code[code] = CallbackView(
            id=before.id if before else 1, state=state, reason=reason,
            requested_at=before.requested_at if before else self.clock(),
            opens_at=opens_at, talk_seconds=talk_seconds)
