"""Calls whose start the tracker never saw, decided from their Cdr events; pure.

A call in progress when ccshortlink (re)started shows only its end: BridgeLeave and Hangup say
nothing of whether, or to whom, it was answered. Asterisk's `Cdr` event does (it needs `cdr`
in the AMI user's `read=`, and cdr_manager enabled): Disposition ANSWERED, the agent's channel
(DestinationChannel, or Channel for an agent's outgoing call), BillableSeconds, Source. Cdr
and Hangup come in either order, and a queue call has one Cdr per member rung: an answered
agent's Cdr decides at once; otherwise the call waits `cdr_wait` seconds after its Hangup.
The Cdr can even come before any event of the customer's channel (under load Asterisk sends it
ahead of the HangupRequest, or between the agent's BridgeLeave and Hangup when the agent hung up
first): it is then kept, bounded and for `cdr_wait`, for the Hangup that follows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field

from ccshortlink.core.callrecords import CallClosed, CallEnded, Outcome, clean_number
from ccshortlink.core.vocab import Trigger


@dataclass(frozen=True)
class CdrFacts:
    """What one Cdr event says about a call whose start was not seen."""

    agent: str | None  # the agent's extension when one side was an agent's channel
    answered: bool
    billable: float
    number: str  # the customer's number as the Cdr gives it (Source or Destination)


@dataclass
class UnseenCall:
    """A hung-up customer channel whose start was not seen, and the Cdrs that came for it."""

    linkedid: str
    customer_number: str  # from its own events; "" when they had none
    cdrs: list[CdrFacts] = field(default_factory=list)
    deadline: float = 0.0


EARLY_CDRS = 1024  # Cdrs kept for channels not seen yet; the oldest goes first beyond it


class UnseenCalls:
    """Holds such calls until their Cdr decides them, or the wait ends; each decided once."""

    def __init__(self, *, card_on_transfer: str, cdr_wait: float) -> None:
        self.card_on_transfer = card_on_transfer
        self.cdr_wait = cdr_wait
        self._waiting: dict[str, UnseenCall] = {}  # customer channel name -> call
        # channel name -> (when it came, the Cdr read as if that channel were the customer's)
        self._early: OrderedDict[str, tuple[float, list[CdrFacts]]] = OrderedDict()

    def early_cdr(self, event: Mapping[str, str], answered: bool, billable: float,
                  agent_of: Callable[[str], str | None], now: float, *,
                  known: Container[str]) -> None:
        """A Cdr ahead of every event of the customer's channel, kept for whichever side is
        the customer's: an incoming call's is its Channel, an agent's outgoing call's the
        other; a side already `known` is not a customer whose events are still to come."""
        channel, dest = event.get("Channel", ""), event.get("DestinationChannel", "")
        for customer, agent, number in ((channel, dest, "Source"), (dest, channel, "Destination")):
            if customer and customer not in known:
                facts = CdrFacts(agent_of(agent) if agent else None, answered, billable,
                                 clean_number(event.get(number, "")))
                _, kept = self._early.pop(customer, (now, []))
                self._early[customer] = (now, [*kept, facts])
        while len(self._early) > EARLY_CDRS or (
                self._early and next(iter(self._early.values()))[0] < now - self.cdr_wait):
            self._early.popitem(last=False)

    def take_early(self, channel: str) -> list[CdrFacts]:
        """The Cdrs that came ahead of `channel`'s Hangup (each handed over once)."""
        return self._early.pop(channel, (0.0, []))[1]

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, channel: str) -> bool:
        return channel in self._waiting

    def linkedids(self) -> list[str]:
        return [call.linkedid for call in self._waiting.values()]

    def hung_up(self, channel: str, call: UnseenCall, now: float) -> list[Outcome]:
        """The customer's Hangup: decided now if an answered Cdr came first, else it waits."""
        call.deadline = now + self.cdr_wait
        decided = self._decide(call, final=False)
        if decided is None:
            self._waiting[channel] = call
            return []
        return decided

    def cdr(self, channel: str, facts: CdrFacts) -> list[Outcome]:
        """A Cdr for a waiting call (`channel` in self): decides it once an agent answered."""
        call = self._waiting[channel]
        call.cdrs.append(facts)
        decided = self._decide(call, final=False)
        if decided is None:
            return []  # a queue's unanswered members come first: wait for the answered one
        del self._waiting[channel]
        return decided

    def due(self, now: float) -> list[Outcome]:
        """Calls that waited long enough: decided from what came, or closed saying why."""
        out: list[Outcome] = []
        for channel, call in list(self._waiting.items()):
            if now >= call.deadline:
                del self._waiting[channel]
                out.extend(self._decide(call, final=True) or [])
        return out

    def close_all(self, reason: str, trigger: Trigger) -> list[Outcome]:
        out: list[Outcome] = [CallClosed(c.linkedid, "", c.customer_number, None, reason, trigger)
                              for c in self._waiting.values()]
        self._waiting.clear()
        return out

    def _decide(self, call: UnseenCall, *, final: bool) -> list[Outcome] | None:
        answered = [c for c in call.cdrs if c.answered and c.agent is not None]
        if answered:
            by_agent = {c.agent: c for c in answered}  # each agent's last Cdr
            chosen = answered[-1:] if self.card_on_transfer == "last" else list(by_agent.values())
            return [CallEnded(linkedid=call.linkedid, agent_extension=str(c.agent),
                              customer_number=call.customer_number or c.number,
                              talk_seconds=c.billable, decided_from="cdr") for c in chosen]
        if not final:
            return None
        if call.cdrs:
            return [CallClosed(call.linkedid, "", call.customer_number or call.cdrs[-1].number,
                               None, "not answered by an agent (from its Cdr; it began before "
                               "ccshortlink was watching)", Trigger.NOT_ANSWERED)]
        return [CallClosed(call.linkedid, "", call.customer_number, None,
                           f"it began before ccshortlink was watching and no Cdr came within "
                           f"{self.cdr_wait:g} s of its Hangup (needs `cdr` in the AMI user's "
                           f"read= and cdr_manager enabled)", Trigger.NO_CDR)]
