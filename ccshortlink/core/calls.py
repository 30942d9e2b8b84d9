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

# The records live in callrecords; importing them from here keeps working.
from ccshortlink.core.callrecords import (
    RESTART_REASON,
    UNANSWERED_REASON,
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
from ccshortlink.core.channels import Channel, ChannelBook
from ccshortlink.core.pbxinstance import InstanceWatch
from ccshortlink.core.unseencalls import CdrFacts, UnseenCall, UnseenCalls
from ccshortlink.core.vocab import Trigger

__all__ = [
    "RESTART_REASON", "AgentLookup", "CallClosed", "CallEnded", "CallTracker", "Event", "Outcome",
    "SendRequested", "channel_endpoint", "clean_number", "default_agent_lookup",
]

class CallTracker(ChannelBook):
    """Feed AMI events with `handle(event, now)`; it returns what each event concluded."""

    def __init__(self, agent_lookup: AgentLookup, *, card_on_transfer: str = "last",
                 feature_code_window: float = 1800.0, call_timeout: float = 12 * 3600.0,
                 max_channels: int = 20000, cdr_wait: float = 60.0) -> None:
        super().__init__(agent_lookup, max_channels)
        self.card_on_transfer = card_on_transfer
        self.feature_code_window = feature_code_window
        self.call_timeout = call_timeout
        self._instance = InstanceWatch()
        self._session: int | None = None
        self._verifying = False  # the AMI session changed: same Asterisk, or a new one?
        self._restarted_at: float | None = None
        self._unseen = UnseenCalls(card_on_transfer=card_on_transfer, cdr_wait=cdr_wait)
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
        self._remember_decided_from_cdr(out, now)
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
        out: list[Outcome] = [self._closed(c, now, RESTART_REASON, Trigger.PBX_RESTART)
                              for c in self._channels.values() if c.is_customer]
        out.extend(self._unseen.close_all(RESTART_REASON, Trigger.PBX_RESTART))
        self._channels.clear()
        self._by_name.clear()
        self._bridges.clear()
        self._recent.clear()  # `*55` must never reach a call of the old instance
        self._restarted_at = now
        return out

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
        chan = self._known(event.get("Channel", ""))
        dest = self._known(event.get("DestinationChannel", ""))
        billable = seconds_of(event.get("BillableSeconds", ""))
        answered = event.get("Disposition") == "ANSWERED"
        if chan is not None and dest is not None and dest.agent is not None and answered:
            chan.reported_talk[dest.agent] = max(chan.reported_talk.get(dest.agent, 0.0),
                                                 billable)
        return self._cdr_of_unseen_start(event, answered, billable, now)

    def _cdr_of_unseen_start(self, event: Event, answered: bool,
                             billable: float, now: float) -> list[Outcome]:
        """Only calls whose Newchannel was not seen: a call seen whole is decided at its Hangup."""
        channel, dest = event.get("Channel", ""), event.get("DestinationChannel", "")
        side = self._customer_side(channel, dest)
        if side is None:
            # Ahead of every event of the customer's channel: kept for its Hangup. The agent's
            # channel may be known by then (it hung up first, its events came before the Cdr),
            # but not one seen from its Newchannel: such a call is decided at its Hangup.
            if channel and not any(c.whole for c in map(self._known, (channel, dest)) if c):
                self._unseen.early_cdr(event, answered, billable, self._agent_named, now,
                                       known=self._by_name)
            return []
        customer_name, agent_name, number, live = side
        agent = self._agent_named(agent_name)
        facts = CdrFacts(agent, answered, billable, clean_number(event.get(number, "")))
        if live is not None:
            live.cdrs.append(facts)  # still up: its Hangup decides, with this Cdr in hand
            return []
        return self._unseen.cdr(customer_name, facts)

    def _customer_side(self, channel: str,
                       dest: str) -> tuple[str, str, str, Channel | None] | None:
        """(customer, agent, Cdr number field, live channel) when one side is an unseen start."""
        # An incoming call's customer is the Channel; an agent's outgoing call's, the destination.
        for customer_name, agent_name, number in ((channel, dest, "Source"),
                                                  (dest, channel, "Destination")):
            if customer_name in self._unseen:
                return customer_name, agent_name, number, None
            live = self._unseen_customer(customer_name)
            if live is not None:
                return customer_name, agent_name, number, live
        return None

    def _unseen_customer(self, name: str) -> Channel | None:
        chan = self._known(name)
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
            cdrs = [*self._unseen.take_early(chan.name), *chan.cdrs]
            return self._unseen.hung_up(chan.name, UnseenCall(
                chan.linkedid, chan.caller_num or chan.dial_string, cdrs), now)
        return self._conclude(chan, now)

    def _conclude(self, chan: Channel, now: float) -> list[Outcome]:
        for agent, start in chan.talking_since.items():
            chan.talk_total[agent] = chan.talk_total.get(agent, 0.0) + now - start
        chan.talking_since.clear()
        number = chan.caller_num or chan.dial_string
        if chan.last_agent is None:
            # Rang out, abandoned, voicemail: no card, but the caller's call is recorded (once:
            # by its first channel; the legs it rang are not customers' calls of their own).
            if chan.uniqueid != chan.linkedid:
                return []
            return [CallClosed(chan.linkedid, "", number, None, UNANSWERED_REASON,
                               Trigger.NOT_ANSWERED)]
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
        self._remember_decided_from_cdr(out, now)
        calls: dict[str, Channel] = {}
        for chan in self._drop_stale(now):
            if chan.is_customer or chan.linkedid not in calls:  # the customer's side tells most
                calls[chan.linkedid] = chan
        out.extend(self._closed(calls[linkedid], now, "no Hangup within call_timeout_hours",
                                Trigger.CALL_TIMEOUT) for linkedid in sorted(calls))
        return out

    def _drop_stale(self, now: float) -> list[Channel]:
        stale = [c for c in self._channels.values() if now - c.last_seen > self.call_timeout]
        for chan in stale:
            self._forget(chan, now)
        for agent, recent in list(self._recent.items()):
            if recent.ended_at is not None and now - recent.ended_at > self.feature_code_window:
                del self._recent[agent]
        return stale

    _handlers: dict[str, Callable[[CallTracker, Event, float], list[Outcome]]] = {
        "Newchannel": ChannelBook._on_channel_event,
        "Newstate": ChannelBook._on_channel_event,
        "NewCallerid": ChannelBook._on_channel_event,
        "NewConnectedLine": ChannelBook._on_channel_event,
        "DialBegin": ChannelBook._on_dial_begin,
        "Rename": ChannelBook._on_rename,
        "BridgeEnter": ChannelBook._on_bridge_enter,
        "BridgeLeave": ChannelBook._on_bridge_leave,
        "BridgeDestroy": ChannelBook._on_bridge_destroy,
        "AgentComplete": _on_agent_complete,
        "Cdr": _on_cdr,
        "FullyBooted": _on_fully_booted,
        "Hangup": _on_hangup,
        "UserEvent": _on_user_event,
    }
