"""Calls whose start the tracker never saw, decided from their Cdr events; pure.

A call in progress when ccshortlink (re)started shows only its end: BridgeLeave and Hangup say
nothing of whether, or to whom, it was answered. Asterisk's `Cdr` event does (it needs `cdr`
in the AMI user's `read=`, and cdr_manager enabled): Disposition ANSWERED, the agent's channel
(DestinationChannel, or Channel for an agent's outgoing call), BillableSeconds, Source. Cdr
and Hangup come in either order, and a queue call has one Cdr per member rung: an answered
agent's Cdr decides at once; otherwise the call waits `cdr_wait` seconds after its Hangup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ccshortlink.core.callrecords import CallClosed, CallEnded, Outcome
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


class UnseenCalls:
    """Holds such calls until their Cdr decides them, or the wait ends; each decided once."""

    def __init__(self, *, card_on_transfer: str, cdr_wait: float) -> None:
        self.card_on_transfer = card_on_transfer
        self.cdr_wait = cdr_wait
        self._waiting: dict[str, UnseenCall] = {}  # customer channel name -> call

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
