"""CallTracker: AMI event dicts in, CallEnded / SendRequested / CallClosed out; pure, no I/O.

A call is followed from the customer's side. Every channel is tracked by Uniqueid; bridges are
tracked by BridgeUniqueid; the two halves of a Local channel (`;1`/`;2`) are a wire joining two
bridges. A customer channel (not Local, not an agent) is "talking" with every agent channel in
its bridge or in a bridge reached through Local wires. When the customer channel hangs up, the
agent it last talked with (or every agent, when configured) gets exactly one CallEnded.

What the events cannot tell is decided from what they do show, and said: a call whose start was
not seen (it began before ccshortlink started) is decided from its `Cdr` event; the calls of an
Asterisk that restarted (see pbxinstance) are closed; channels beyond `max_channels` and those
whose Hangup never comes are let go. Each of these is a CallClosed with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# The records live in callrecords; importing them from here keeps working.
from ccshortlink.core.callrecords import (
    RESTART_REASON,
    AgentLookup,
    CallClosed,
    CallEnded,
    Event,
    Outcome,
    SendRequested,
    channel_endpoint,
    clean_number,
    default_agent_lookup,
    seconds_of,
)
from ccshortlink.core.pbxinstance import InstanceWatch
from ccshortlink.core.unseencalls import CdrFacts, UnseenCall, UnseenCalls

__all__ = [
    "RESTART_REASON", "AgentLookup", "CallClosed", "CallEnded", "CallTracker", "Event", "Outcome",
    "SendRequested", "channel_endpoint", "clean_number", "default_agent_lookup",
]

@dataclass
class _Channel:
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
class _RecentCall:
    customer_number: str
    linkedid: str
    ended_at: float | None  # None while still talking


class CallTracker:
    """Feed AMI events with `handle(event, now)`; it returns what each event concluded."""

    def __init__(self, agent_lookup: AgentLookup, *, card_on_transfer: str = "last",
                 feature_code_window: float = 1800.0, call_timeout: float = 12 * 3600.0,
                 max_channels: int = 20000, cdr_wait: float = 60.0) -> None:
        self.agent_lookup = agent_lookup
        self.card_on_transfer = card_on_transfer
        self.feature_code_window = feature_code_window
        self.call_timeout = call_timeout
        self.max_channels = max_channels
        self._instance = InstanceWatch()
        self._session: int | None = None
        self._verifying = False  # the AMI session changed: same Asterisk, or a new one?
        self._restarted_at: float | None = None
        self._unseen = UnseenCalls(card_on_transfer=card_on_transfer, cdr_wait=cdr_wait)
        self._pending: list[Outcome] = []  # concluded by the side (evictions) of an event
        self._channels: dict[str, _Channel] = {}
        self._by_name: dict[str, str] = {}
        self._bridges: dict[str, set[str]] = {}
        self._recent: dict[str, _RecentCall] = {}  # agent extension -> latest customer
        self.events_seen = 0

    @property
    def active_channels(self) -> int:
        return len(self._channels)

    def calls_in_progress(self) -> list[str]:
        """Linkedids of the calls with a customer still on the line (for a line at stop)."""
        return sorted({c.linkedid for c in self._channels.values() if c.is_customer}
                      | set(self._unseen.linkedids()))

    def session(self, number: int) -> None:
        """The AMI session an event came in; a new one may be a new Asterisk behind it."""
        if self._session is not None and number != self._session:
            self._verifying = True
        self._session = number

    def handle(self, event: Event, now: float) -> list[Outcome]:
        self.events_seen += 1
        name = event.get("Event", "")
        before: list[Outcome] = []  # concluded by this event's arrival, before its own effect
        if self._verifying:
            before = self._verify(name, event, now)
        elif name == "Newchannel":  # keeps the highest Uniqueid counter current
            self._instance.new_channel(event.get("Uniqueid", ""), after_reconnect=False)
        if self._unseen:
            before += self._unseen.due(now)
        handler = self._handlers.get(name)
        out = handler(self, event, now) if handler is not None else []
        if before or self._pending:
            out = [*before, *self._pending, *out]
            self._pending = []
        return out

    # --- the Asterisk instance -----------------------------------------------------------

    def _verify(self, name: str, event: Event, now: float) -> list[Outcome]:
        """After a reconnect: the first clue says whether the old calls still exist."""
        if name == "Newchannel":
            verdict = self._instance.new_channel(event.get("Uniqueid", ""), after_reconnect=True)
            if verdict is not None:
                self._verifying = False
            return self._close_instance(now) if verdict else []
        if event.get("Uniqueid", "") in self._channels:  # an old channel still lives
            self._verifying = False
        return []

    def _on_fully_booted(self, event: Event, now: float) -> list[Outcome]:
        verdict = self._instance.fully_booted(event.get("Uptime", ""), now,
                                              after_reconnect=self._verifying)
        if verdict is not None:
            self._verifying = False
        return self._close_instance(now) if verdict else []

    def _close_instance(self, now: float) -> list[Outcome]:
        """The Asterisk that had these calls is gone: close each, forget all of its state."""
        out: list[Outcome] = [self._closed(c, now, RESTART_REASON, "pbx_restart")
                              for c in self._channels.values() if c.is_customer]
        out.extend(self._unseen.close_all(RESTART_REASON, "pbx_restart"))
        self._channels.clear()
        self._by_name.clear()
        self._bridges.clear()
        self._recent.clear()  # `*55` must never reach a call of the old instance
        self._restarted_at = now
        return out

    def _closed(self, chan: _Channel, now: float, reason: str, trigger: str) -> CallClosed:
        talk: float | None = None
        if chan.last_agent is not None:
            talk = chan.talk_total.get(chan.last_agent, 0.0)
            since = chan.talking_since.get(chan.last_agent)
            talk += now - since if since is not None else 0.0
        return CallClosed(
            linkedid=chan.linkedid, agent_extension=chan.last_agent or chan.agent or "",
            customer_number=(chan.caller_num or chan.dial_string) if chan.is_customer else "",
            talk_seconds=talk, reason=reason, trigger=trigger)

    # --- channels ------------------------------------------------------------------------

    def _channel(self, event: Event, now: float, prefix: str = "") -> _Channel | None:
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
            chan = _Channel(uniqueid=uniqueid, name=name,
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

    def _partner(self, chan: _Channel) -> _Channel | None:
        """The other half of a Local channel (';1' <-> ';2')."""
        if not chan.is_local or chan.name[-2:] not in (";1", ";2"):
            return None
        other = chan.name[:-1] + ("2" if chan.name.endswith("1") else "1")
        uniqueid = self._by_name.get(other)
        return self._channels.get(uniqueid) if uniqueid else None

    def _component(self, bridge: str | None) -> list[_Channel]:
        """Every channel in `bridge` and in bridges joined to it by Local wires."""
        if bridge is None:
            return []
        seen_bridges = {bridge}
        todo = [bridge]
        members: list[_Channel] = []
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

    def _retalk(self, bridges: set[str | None], extra: list[_Channel], now: float) -> None:
        """Recompute who talks with whom around the bridges that just changed."""
        touched: dict[str, _Channel] = {c.uniqueid: c for c in extra}
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
                    self._recent[agent] = _RecentCall(chan.caller_num or chan.dial_string,
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

    def _leave_bridge(self, chan: _Channel, bridge: str | None, now: float) -> None:
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

    def _on_agent_complete(self, event: Event, now: float) -> list[Outcome]:
        """Queue calls carry the talk time directly; keep it as the authoritative figure."""
        chan = self._channel(event, now)
        dest = self._channel(event, now, "Dest")
        # FreePBX members are Local channels: then the Interface names the extension.
        agent = (dest.agent if dest is not None else None) or self.agent_lookup(
            event.get("Interface", ""), "")
        if chan is not None and agent is not None:
            try:
                talk = float(event.get("TalkTime", "0") or 0)
            except ValueError:
                talk = 0.0
            chan.reported_talk[agent] = max(chan.reported_talk.get(agent, 0.0), talk)
        return []

    def _on_cdr(self, event: Event, now: float) -> list[Outcome]:
        """A Cdr confirms the billable (talk) seconds, or decides a call whose start was unseen."""
        uniqueid = self._by_name.get(event.get("Channel", ""))
        dest_id = self._by_name.get(event.get("DestinationChannel", ""))
        chan = self._channels.get(uniqueid) if uniqueid else None
        dest = self._channels.get(dest_id) if dest_id else None
        billable = seconds_of(event.get("BillableSeconds", ""))
        answered = event.get("Disposition") == "ANSWERED"
        if chan is not None and dest is not None and dest.agent is not None and answered:
            chan.reported_talk[dest.agent] = max(chan.reported_talk.get(dest.agent, 0.0),
                                                 billable)
        return self._cdr_of_unseen_start(event, answered, billable)

    def _cdr_of_unseen_start(self, event: Event, answered: bool,
                             billable: float) -> list[Outcome]:
        """Only calls whose Newchannel was not seen: a call seen whole is decided at its Hangup."""
        channel, dest = event.get("Channel", ""), event.get("DestinationChannel", "")
        # An incoming call's customer is the Channel; an agent's outgoing call's, the destination.
        for customer_name, agent_name, number in ((channel, dest, "Source"),
                                                  (dest, channel, "Destination")):
            waiting = customer_name in self._unseen
            live = None if waiting else self._unseen_customer(customer_name)
            if waiting or live is not None:
                break
        else:
            return []
        agent_id = self._by_name.get(agent_name)
        agent_chan = self._channels.get(agent_id) if agent_id else None
        agent = agent_chan.agent if agent_chan is not None else self.agent_lookup(agent_name, "")
        facts = CdrFacts(agent, answered, billable, clean_number(event.get(number, "")))
        if live is not None:
            live.cdrs.append(facts)  # still up: its Hangup decides, with this Cdr in hand
            return []
        return self._unseen.cdr(customer_name, facts)

    def _unseen_customer(self, name: str) -> _Channel | None:
        uniqueid = self._by_name.get(name)
        chan = self._channels.get(uniqueid) if uniqueid else None
        return chan if chan is not None and chan.is_customer and not chan.whole else None

    # --- the end of a call ---------------------------------------------------------------

    def _on_hangup(self, event: Event, now: float) -> list[Outcome]:
        chan = self._channel(event, now)
        if chan is None:
            return []
        self._forget(chan, now)
        if not chan.is_customer:
            return []
        if chan.last_agent is None and not chan.whole:
            # Its start (and any bridge) came before we watched: its Cdr says what happened.
            return self._unseen.hung_up(chan.name, UnseenCall(
                chan.linkedid, chan.caller_num or chan.dial_string, chan.cdrs), now)
        return self._conclude(chan, now)

    def _forget(self, chan: _Channel, now: float) -> None:
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
                         f"the oldest was let go", "evicted"))

    def _conclude(self, chan: _Channel, now: float) -> list[Outcome]:
        for agent, start in chan.talking_since.items():
            chan.talk_total[agent] = chan.talk_total.get(agent, 0.0) + now - start
        chan.talking_since.clear()
        if chan.last_agent is None:
            return []
        number = chan.caller_num or chan.dial_string
        for agent in chan.talk_total:
            recent = self._recent.get(agent)
            if recent is not None and recent.linkedid == chan.linkedid:
                recent.ended_at = now
        agents = [chan.last_agent] if self.card_on_transfer == "last" else list(chan.talk_total)
        return [CallEnded(
            linkedid=chan.linkedid, agent_extension=agent, customer_number=number,
            talk_seconds=max(chan.talk_total.get(agent, 0.0), chan.reported_talk.get(agent, 0.0)),
            card_already_sent=chan.card_sent_by_agent,
        ) for agent in agents]

    # --- the agent's feature code --------------------------------------------------------

    def _on_user_event(self, event: Event, now: float) -> list[Outcome]:
        if event.get("UserEvent", "").lower() != "sendcard":
            return []
        chan = self._channel(event, now)
        agent = event.get("Agent", "").strip() or (chan.caller_num if chan else "")
        explicit = clean_number(event.get("Number", ""))
        linkedid = event.get("Linkedid", "")
        if explicit:
            return [SendRequested(agent, explicit, linkedid)]
        # During a call: a customer is bridged with this agent right now.
        for customer in self._channels.values():
            if customer.is_customer and agent in customer.talking_since:
                customer.card_sent_by_agent = True
                return [SendRequested(agent, customer.caller_num or customer.dial_string,
                                      customer.linkedid)]
        recent = self._recent.get(agent)
        if recent is not None and (recent.ended_at is None
                                   or now - recent.ended_at <= self.feature_code_window):
            return [SendRequested(agent, recent.customer_number, recent.linkedid)]
        restarted = (self._restarted_at is not None
                     and now - self._restarted_at <= self.feature_code_window)
        reason = ("no call for this agent since the PBX restarted" if restarted
                  else "no recent call for this agent")
        return [SendRequested(agent, "", linkedid, reason=reason)]

    # --- housekeeping --------------------------------------------------------------------

    def evict(self, now: float) -> list[str]:
        """Forget channels whose Hangup never came (lost events); returns their linkedids."""
        return sorted({c.linkedid for c in self._drop_stale(now)})

    def expire(self, now: float) -> list[Outcome]:
        """Periodic: close calls whose Cdr or Hangup never came, one CallClosed per call."""
        out = self._unseen.due(now)
        calls: dict[str, _Channel] = {}
        for chan in self._drop_stale(now):
            if chan.is_customer or chan.linkedid not in calls:  # the customer's side tells most
                calls[chan.linkedid] = chan
        out.extend(self._closed(calls[linkedid], now, "no Hangup within call_timeout_hours",
                                "call_timeout") for linkedid in sorted(calls))
        return out

    def _drop_stale(self, now: float) -> list[_Channel]:
        stale = [c for c in self._channels.values() if now - c.last_seen > self.call_timeout]
        for chan in stale:
            self._forget(chan, now)
        for agent, recent in list(self._recent.items()):
            if recent.ended_at is not None and now - recent.ended_at > self.feature_code_window:
                del self._recent[agent]
        return stale

    _handlers: dict[str, Callable[[CallTracker, Event, float], list[Outcome]]] = {
        "Newchannel": _on_channel_event,
        "Newstate": _on_channel_event,
        "NewCallerid": _on_channel_event,
        "NewConnectedLine": _on_channel_event,
        "DialBegin": _on_dial_begin,
        "Rename": _on_rename,
        "BridgeEnter": _on_bridge_enter,
        "BridgeLeave": _on_bridge_leave,
        "BridgeDestroy": _on_bridge_destroy,
        "AgentComplete": _on_agent_complete,
        "Cdr": _on_cdr,
        "FullyBooted": _on_fully_booted,
        "Hangup": _on_hangup,
        "UserEvent": _on_user_event,
    }
