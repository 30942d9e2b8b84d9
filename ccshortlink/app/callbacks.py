"""The call-back desk the card and the API ask: request, latest, presence, preferred agent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from zoneinfo import ZoneInfo

from ccshortlink.app.ports import CallbackStore, Counter, Log
from ccshortlink.config.callback import CallbackConfig
from ccshortlink.core.agents import Agent, AgentDirectory, split_extension
from ccshortlink.core.callbacks import CallbackRecord, Refusal, hours_refusal
from ccshortlink.core.hours import Hours, parse_hours
from ccshortlink.core.policy import CustomerNumber, PolicyConfig, normalise_number
from ccshortlink.core.presence import PresenceBook, combine, device_extension
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.records import CallbackView, PreferredAgent
from ccshortlink.core.vocab import CallbackState, Presence


@lru_cache(maxsize=64)
def _hours(text: str) -> Hours:
    return parse_hours(text)  # checked when the config and agents were read


def extensions_on(agent: Agent, pbx: str) -> list[str]:
    """The agent's bare extensions on `pbx` (not channel names): those qualified by the PBX's
    name first (as AgentDirectory.by_extension prefers them), then those on every PBX."""
    return _on(agent, pbx, channels=False)


def channels_on(agent: Agent, pbx: str) -> list[str]:
    """The agent's channel names on `pbx` (PJSIP/desk-ann), in the same order: each a dial
    string as it is."""
    return _on(agent, pbx, channels=True)


def _on(agent: Agent, pbx: str, *, channels: bool) -> list[str]:
    own: list[str] = []
    everywhere: list[str] = []
    for extension in agent.extensions:
        qualified, bare = split_extension(extension)
        if ("/" in bare) == channels and qualified in ("", pbx):
            (own if qualified else everywhere).append(bare)
    return own + everywhere


def view(record: CallbackRecord) -> CallbackView:
    return CallbackView(id=record.id, state=record.state, reason=record.reason,
                        requested_at=record.requested_at, opens_at=record.opens_at,
                        talk_seconds=record.talk_seconds)


@dataclass
class CallbackDeps:
    """What the desk and the dispatcher share, wired by the daemon."""

    store: CallbackStore
    config: CallbackConfig
    agents: Callable[[], AgentDirectory]
    pbxs: Sequence[str]  # the [[ami]] names, in order
    policy: PolicyConfig
    presence: PresenceBook
    clock: Callable[[], float]
    log: Log
    outcomes: Callable[[str], Counter]  # ccshortlink_callbacks_total by outcome
    wake: Callable[[], None] = lambda: None  # the dispatcher looks at the queue now

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.policy.timezone)

    def pbx_for(self, link_pbx: str) -> str:
        """The PBX that places a link's call-back: [callback] pbx, else the link's, else
        the first."""
        if self.config.pbx:
            return self.config.pbx
        return link_pbx if link_pbx in self.pbxs else self.pbxs[0]

    def hours_of(self, agent: Agent | None) -> Hours:
        return _hours(agent.hours if agent is not None and agent.hours else self.config.hours)

    def presence_on(self, agent: Agent, pbx: str) -> Presence:
        devices = [device_extension(channel) for channel in channels_on(agent, pbx)]
        return self.presence.of(pbx, extensions_on(agent, pbx) + devices)


class Callbacks:
    """app.ports.CallbackDesk: what the web app asks about call-backs and presence."""

    def __init__(self, deps: CallbackDeps) -> None:
        self.deps = deps

    def presence(self, agent_id: str) -> Presence:
        """The agent's state over every PBX, as over several phones: busy on one is busy."""
        agent = self.deps.agents().by_id(agent_id)
        if agent is None:
            return Presence.UNKNOWN
        return combine(self.deps.presence_on(agent, pbx) for pbx in self.deps.pbxs)

    async def request(self, code: str) -> CallbackView | None:
        deps = self.deps
        now = deps.clock()

        def judge(agent_id: str, link_pbx: str) -> tuple[str, Refusal | None]:
            agent = deps.agents().by_id(agent_id)
            return deps.pbx_for(link_pbx), hours_refusal(deps.hours_of(agent), now, deps.zone)

        record = await deps.store.request_callback(
            code, now, per_link_per_day=deps.config.per_link_per_day, judge=judge)
        if record is None:
            return None
        if record.created:
            fields = {"callback_id": record.id, "agent_id": record.agent_id, "pbx": record.pbx,
                      "customer": mask_number(record.customer_number)}
            if record.state == CallbackState.REFUSED:
                deps.log.info("callback_refused", reason=record.reason, **fields)
                deps.outcomes(CallbackState.REFUSED).inc()
            else:
                deps.log.info("callback_requested", **fields)
                deps.wake()
        return view(record)

    async def latest(self, code: str) -> CallbackView | None:
        record = await self.deps.store.latest_callback(code)
        return None if record is None else view(record)

    async def preferred_agent(self, number: str) -> PreferredAgent:
        deps = self.deps
        nobody = PreferredAgent(extension=None, agent_id=None, available=None)
        # Any number the PBX shows, landlines too: a card went to it, so it is the customer's.
        parsed = normalise_number(number, replace(deps.policy, mobile_only=False))
        if not isinstance(parsed, CustomerNumber):
            return nobody
        found = await deps.store.preferred_agent_of(parsed.e164, deps.clock())
        if found is None:
            return nobody
        agent_id, link_pbx = found
        agent = deps.agents().by_id(agent_id)
        pbx = link_pbx if link_pbx in deps.pbxs else deps.pbx_for(link_pbx)
        extensions = extensions_on(agent, pbx) if agent is not None else []
        if agent is None or not extensions:
            return PreferredAgent(extension=None, agent_id=agent_id, available=None)
        presence = deps.presence_on(agent, pbx)
        available = None if presence == Presence.UNKNOWN else presence == Presence.FREE
        return PreferredAgent(extension=extensions[0], agent_id=agent_id, available=available)
