"""What is live on the PBX: channels by Uniqueid and name, bridges, and who talks with whom.

The CallTracker's bookkeeping, kept apart from its decisions (calls.py): each AMI event that
only moves channels and bridges ends here, and the tracker reads the result at a Hangup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ccshortlink.core.callrecords import (
    AgentLookup,
    CallClosed,
    CallEnded,
    Event,
    Outcome,
    channel_endpoint,
    clean_number,
)
from ccshortlink.core.unseencalls import CdrFacts
from ccshortlink.core.vocab import Trigger


@dataclass
class Channel:
    uniqueid: str
    name: str
    linkedid: str
    caller_num: str = ""
    connected_num: str = ""
    agent: str | None = None  # extension when this is an agent's device channel
    is_local: bool = False
    bridge: str | None = None
    last_seen: float = 0.0
    # customer side only: agent extension -> talk segments
    talking_since: dict[str, float] = field(default_factory=dict)
    talk_total: dict[str, float] = field(default_factory=dict)
    reported_talk: dict[str, float] = field(default_factory=dict)  # AgentComplete / Cdr figures
    last_agent: str | None = None
    dial_string: str = ""
    card_sent_by_agent: bool = False
    whole: bool = False  # its Newchannel was seen: its whole life is known
    cdrs: list[CdrFacts] = field(default_factory=list)  # only while `whole` is False

    @property
    def is_customer(self) -> bool:
        return not self.is_local and self.agent is None


@dataclass
class RecentCall:
    customer_number: str
    linkedid: str
    ended_at: float | None  # None while still talking


class ChannelBook:
    """Channels, bridges and talk segments as the events tell them; evicts beyond a bound."""

    def __init__(self, agent_lookup: AgentLookup, max_channels: int) -> None:
        self.agent_lookup = agent_lookup
        self.max_channels = max_channels
        self._pending: list[Outcome] = []  # concluded by the side (evictions) of an event
        self._channels: dict[str, Channel] = {}
        self._by_name: dict[str, str] = {}
        self._bridges: dict[str, set[str]] = {}
        self._recent: dict[str, RecentCall] = {}  # agent extension -> latest customer

    def _closed(self, chan: Channel, now: float, reason: str,
                trigger: Trigger) -> CallClosed:
        talk: float | None = None
        if chan.last_agent is not None:
            talk = chan.talk_total.get(chan.last_agent, 0.0)
            since = chan.talking_since.get(chan.last_agent)
            talk += now - since if since is not None else 0.0
        return CallClosed(
            linkedid=chan.linkedid, agent_extension=chan.last_agent or chan.agent or "",
            customer_number=(chan.caller_num or chan.dial_string) if chan.is_customer else "",
            talk_seconds=talk, reason=reason, trigger=trigger)

    def _remember_decided_from_cdr(self, outcomes: list[Outcome], now: float) -> None:
        """A call decided from its Cdr (begun before we watched) is its agent's latest one
        too: `*55` after it must reach that customer, as after a call seen whole."""
        for outcome in outcomes:
            if isinstance(outcome, CallEnded) and outcome.decided_from == "cdr":
                recent = self._recent.get(outcome.agent_extension)
                if recent is None or recent.ended_at is not None:  # not talking with another
                    self._recent[outcome.agent_extension] = RecentCall(
                        outcome.customer_number, outcome.linkedid, now)

    # --- channels ------------------------------------------------------------------------

    def _known(self, name: str) -> Channel | None:
        """The live channel called `name`, if any."""
        uniqueid = self._by_name.get(name)
        return self._channels.get(uniqueid) if uniqueid else None

    def _agent_named(self, name: str) -> str | None:
        """The agent of the channel called `name`: as its events said, else from its name."""
        chan = self._known(name)  # a Local channel's events name no agent: its name may
        return (chan.agent if chan is not None else None) or self.agent_lookup(name, "")

    def _channel(self, event: Event, now: float, prefix: str = "") -> Channel | None:
        uniqueid = event.get(prefix + "Uniqueid", "")
        name = event.get(prefix + "Channel", "")
        if not uniqueid or not name:
            return None
        chan = self._channels.get(uniqueid)
        if chan is None:
            # First sight (Newchannel, or we connected mid-call): create it lazily.
            if len(self._channels) >= self.max_channels:
                self._evict_oldest(now)
            tech, _ = channel_endpoint(name)
            chan = Channel(uniqueid=uniqueid, name=name,
                            linkedid=event.get(prefix + "Linkedid", uniqueid),
                            is_local=tech.lower() == "local",
                            whole=not prefix and event.get("Event") == "Newchannel")
            self._channels[uniqueid] = chan
            self._by_name[name] = uniqueid
        chan.last_seen = now
        chan.linkedid = event.get(prefix + "Linkedid", chan.linkedid) or chan.linkedid
        caller = event.get(prefix + "CallerIDNum")
        if caller is not None:
            chan.caller_num = clean_number(caller)
        connected = event.get(prefix + "ConnectedLineNum")
        if connected is not None:
            chan.connected_num = clean_number(connected)
        if chan.name != name:  # renamed by masquerade or Local optimisation
            self._by_name.pop(chan.name, None)
            chan.name = name
            self._by_name[name] = uniqueid
        if not chan.is_local and chan.agent is None:
            chan.agent = self.agent_lookup(name, chan.caller_num)
        return chan

    def _on_channel_event(self, event: Event, now: float) -> list[Outcome]:
        self._channel(event, now)
        return []

    def _on_dial_begin(self, event: Event, now: float) -> list[Outcome]:
        self._channel(event, now)
        dest = self._channel(event, now, "Dest")
        if dest is not None and dest.is_customer and not dest.caller_num:
            dest.dial_string = event.get("DialString", "")
        return []

    def _on_rename(self, event: Event, now: float) -> list[Outcome]:
        uniqueid = event.get("Uniqueid", "")
        chan = self._channels.get(uniqueid)
        if chan is not None and event.get("Newname"):
            self._by_name.pop(chan.name, None)
            chan.name = event["Newname"]
            self._by_name[chan.name] = uniqueid
        return []

    # --- bridges and talk time -----------------------------------------------------------

    def _partner(self, chan: Channel) -> Channel | None:
        """The other half of a Local channel (';1' <-> ';2')."""
        if not chan.is_local or chan.name[-2:] not in (";1", ";2"):
            return None
        return self._known(chan.name[:-1] + ("2" if chan.name.endswith("1") else "1"))

    def _component(self, bridge: str | None) -> list[Channel]:
        """Every channel in `bridge` and in bridges joined to it by Local wires."""
        if bridge is None:
            return []
        seen_bridges = {bridge}
        todo = [bridge]
        members: list[Channel] = []
        while todo:
            current = todo.pop()
            for uniqueid in self._bridges.get(current, ()):
                chan = self._channels.get(uniqueid)
                if chan is None:
                    continue
                members.append(chan)
                partner = self._partner(chan)
                if partner is not None and partner.bridge and partner.bridge not in seen_bridges:
                    seen_bridges.add(partner.bridge)
                    todo.append(partner.bridge)
        return members

    def _retalk(self, bridges: set[str | None], extra: list[Channel], now: float) -> None:
        """Recompute who talks with whom around the bridges that just changed."""
        touched: dict[str, Channel] = {c.uniqueid: c for c in extra}
        for bridge in bridges:
            for chan in self._component(bridge):
                touched[chan.uniqueid] = chan
        for chan in touched.values():
            if not chan.is_customer:
                continue
            component = self._component(chan.bridge)
            agents = {c.agent for c in component if c.agent is not None}
            for agent in list(chan.talking_since):
                if agent not in agents:
                    start = chan.talking_since.pop(agent)
                    chan.talk_total[agent] = chan.talk_total.get(agent, 0.0) + now - start
            for agent in agents:
                if agent not in chan.talking_since:
                    chan.talking_since[agent] = now
                    chan.last_agent = agent
                    self._recent[agent] = RecentCall(chan.caller_num or chan.dial_string,
                                                      chan.linkedid, None)

    def _on_bridge_enter(self, event: Event, now: float) -> list[Outcome]:
        chan = self._channel(event, now)
        bridge = event.get("BridgeUniqueid", "")
        if chan is None or not bridge:
            return []
        if chan.bridge and chan.bridge != bridge:
            self._bridges.get(chan.bridge, set()).discard(chan.uniqueid)
        chan.bridge = bridge
        self._bridges.setdefault(bridge, set()).add(chan.uniqueid)
        partner = self._partner(chan)
        self._retalk({bridge, partner.bridge if partner else None}, [chan], now)
        return []

    def _on_bridge_leave(self, event: Event, now: float) -> list[Outcome]:
        chan = self._channel(event, now)
        bridge = event.get("BridgeUniqueid", "")
        if chan is None:
            return []
        self._leave_bridge(chan, bridge or chan.bridge, now)
        return []

    def _leave_bridge(self, chan: Channel, bridge: str | None, now: float) -> None:
        if bridge is not None:
            members = self._bridges.get(bridge)
            if members is not None:
                members.discard(chan.uniqueid)
                if not members:
                    del self._bridges[bridge]
        if chan.bridge == bridge:
            chan.bridge = None
        partner = self._partner(chan)
        self._retalk({bridge, partner.bridge if partner else None}, [chan], now)

    def _on_bridge_destroy(self, event: Event, now: float) -> list[Outcome]:
        bridge = event.get("BridgeUniqueid", "")
        for uniqueid in list(self._bridges.get(bridge, ())):
            chan = self._channels.get(uniqueid)
            if chan is not None:
                self._leave_bridge(chan, bridge, now)
        self._bridges.pop(bridge, None)
        return []

    def _forget(self, chan: Channel, now: float) -> None:
        if chan.bridge is not None:
            self._leave_bridge(chan, chan.bridge, now)
        self._channels.pop(chan.uniqueid, None)
        if self._by_name.get(chan.name) == chan.uniqueid:
            del self._by_name[chan.name]

    def _evict_oldest(self, now: float) -> None:
        """Bounded memory: the channel made first goes (one that never hung up, most likely)."""
        oldest = next(iter(self._channels.values()))
        self._forget(oldest, now)
        self._pending.append(self._closed(
            oldest, now, f"more than max_live_channels ({self.max_channels}) live channels: "
                         f"the oldest was let go", Trigger.EVICTED))
