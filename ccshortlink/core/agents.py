"""Agents as the domain sees them: the Agent record and the directory that finds one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A PBX name (see [[ami]]): lowercase letters, digits and inner hyphens, 32 at most.
PBX_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")


def channel_key(channel: str) -> str:
    """How the call tracker sees a channel: a Local channel without its @context."""
    tech, _, resource = channel.partition("/")
    return f"{tech}/{resource.split('@', 1)[0]}" if tech.lower() == "local" else channel


def split_extension(extension: str) -> tuple[str, str]:
    """('site-a', '1001') from 'site-a:1001'; ('', '1001') for an extension on every PBX.

    A channel name never reads as qualified: a ':' in it comes after its '/', and a PBX
    name has no '/'.
    """
    pbx, colon, bare = extension.partition(":")
    if colon and PBX_NAME.fullmatch(pbx) and bare:
        return pbx, bare
    return "", extension


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
    # Working hours for call-backs, e.g. "Mon-Fri 09:00-18:00" ("" = [callback] hours).
    hours: str = ""

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
        # (pbx, extension): '' for an extension on every PBX, else the PBX it is qualified by
        self._by_extension = {split_extension(ext): a for a in agents for ext in a.extensions}
        self.pbx_names = frozenset(pbx for pbx, _ in self._by_extension if pbx)
        # Unusual channel names (e.g. "SIP/trunk-agent7") mapped to an extension; a channel
        # name among an agent's extensions maps to that agent's first extension.
        self.channel_map: dict[str, str] = {
            channel_key(ext): a.extensions[0] for a in agents for ext in a.extensions
            if "/" in ext and not split_extension(ext)[0]}
        self.channel_map.update((channel_key(k), v) for k, v in (channel_map or {}).items())
        self._channel_maps: dict[str, dict[str, str]] = {}
        for a in agents:  # each PBX's own: its qualified channel names, on top of the others
            for ext in a.extensions:
                pbx, bare = split_extension(ext)
                if pbx and "/" in bare:
                    mapped = self._channel_maps.setdefault(pbx, {})
                    mapped[channel_key(bare)] = split_extension(a.extensions[0])[1]

    def __len__(self) -> int:
        return len(self.agents)

    def by_id(self, agent_id: str) -> Agent | None:
        return self._by_id.get(agent_id)

    def by_extension(self, extension: str, pbx: str = "") -> Agent | None:
        """The agent of an extension as seen on `pbx`: one qualified by that PBX's name wins
        over one on every PBX. Without `pbx`, as written ('1001' or 'site-a:1001')."""
        qualified, bare = split_extension(extension)
        if not pbx or qualified:  # e.g. a channel_map entry naming 'site-a:1001'
            found = self._by_extension.get((qualified, bare))
            return found if not pbx or qualified == pbx else None
        return self._by_extension.get((pbx, extension)) or self._by_extension.get(
            ("", extension))

    def channel_map_for(self, pbx: str) -> dict[str, str]:
        """The channel names that mean an agent on `pbx`."""
        own = self._channel_maps.get(pbx)
        return {**self.channel_map, **own} if own else self.channel_map
