"""Agents as the domain sees them: the Agent record and the directory that finds one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def channel_key(channel: str) -> str:
    """How the call tracker sees a channel: a Local channel without its @context."""
    tech, _, resource = channel.partition("/")
    return f"{tech}/{resource.split('@', 1)[0]}" if tech.lower() == "local" else channel


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """One line of an agent's service record, e.g. an award or a milestone."""

    title: str
    detail: str = ""
    date: str = ""


@dataclass(frozen=True, slots=True)
class Review:
    """A review shown on the card, either static from YAML or left on the page."""

    stars: int
    text: str
    author: str = ""
    date: str = ""


@dataclass(frozen=True, slots=True)
class Agent:
    """A customer-service agent: the CS ID and everything the card shows."""

    id: str
    extensions: tuple[str, ...]
    name: str
    phone: str
    slogan: str = ""
    avatar: Path | None = None
    title: str = ""
    language: str = ""
    greeting: Path | None = None
    # Static figures from other systems, merged with what the daemon measures itself.
    satisfaction: float | None = None
    satisfaction_votes: int = 0
    calls_handled: int = 0
    customers_served: int = 0
    service_records: tuple[ServiceRecord, ...] = ()
    reviews: tuple[Review, ...] = ()
    # False: no card goes by itself when this agent's call ends; `*55` still sends one.
    auto_send: bool = True

    @property
    def initials(self) -> str:
        words = self.name.split()
        if len(words) > 1:
            return (words[0][0] + words[-1][0]).upper()
        # CJK names: the family name is the first character
        return self.name[:1].upper()


class AgentDirectory:
    """Look agents up by CS ID or by PBX extension."""

    def __init__(self, agents: list[Agent], channel_map: dict[str, str] | None = None) -> None:
        # Every index is built here, so a reload builds it off the event loop.
        self.agents: tuple[Agent, ...] = tuple(agents)
        self._by_id = {a.id: a for a in agents}
        self._by_extension = {ext: a for a in agents for ext in a.extensions}
        # Unusual channel names (e.g. "SIP/trunk-agent7") mapped to an extension; a channel
        # name among an agent's extensions maps to that agent's first extension.
        self.channel_map: dict[str, str] = {
            channel_key(ext): a.extensions[0] for a in agents for ext in a.extensions if "/" in ext}
        self.channel_map.update((channel_key(k), v) for k, v in (channel_map or {}).items())

    def __len__(self) -> int:
        return len(self.agents)

    def by_id(self, agent_id: str) -> Agent | None:
        return self._by_id.get(agent_id)

    def by_extension(self, extension: str) -> Agent | None:
        return self._by_extension.get(extension)
