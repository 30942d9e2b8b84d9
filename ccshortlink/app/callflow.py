"""AMI events through the call tracker: one log line per ended call, each queued to be decided."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from ccshortlink.app.ports import Counter, Log
from ccshortlink.core.calls import CallClosed, CallEnded, CallTracker, Outcome
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.routebook import RouteBook
from ccshortlink.core.vocab import Trigger

CALLBACK_CALLS_KEPT = 1000


class CallFlow:
    """Feeds the tracker in event order; what it says has ended goes to `outcomes`."""

    def __init__(self, tracker: CallTracker, log: Log, *, calls_seen: Counter,
                 calls_ended: Counter, monotonic: Callable[[], float] = time.monotonic,
                 pbx: str = "", outcomes: asyncio.Queue[Outcome] | None = None) -> None:
        self.tracker = tracker
        self.pbx = pbx  # the PBX these events come from: every outcome says so
        self.log = log
        self.calls_seen = calls_seen
        self.calls_ended = calls_ended
        self.monotonic = monotonic
        # Several PBXs' flows may share one queue: one decider takes them all, in order.
        self.outcomes: asyncio.Queue[Outcome] = outcomes if outcomes is not None \
            else asyncio.Queue()
        self.stopping = False  # set at the stop: later events are not turned into decisions
        # Beside the tracker, on the same events: each call's direction and queues, for the rules
        self.routes = RouteBook(max_calls=tracker.max_channels, timeout=tracker.call_timeout)
        # Linkedids of call-backs' own calls: the customer has the card already (newest kept)
        self.callback_calls: dict[str, None] = {}

    def mark_callback(self, linkedid: str) -> None:
        """This call is a call-back the daemon placed: no card when it ends."""
        self.callback_calls[linkedid] = None
        while len(self.callback_calls) > CALLBACK_CALLS_KEPT:
            del self.callback_calls[next(iter(self.callback_calls))]

    def on_event(self, event: Mapping[str, str], session: int | None = None) -> None:
        """Runs on the loop for every AMI event, in order: must stay fast and never block."""
        if self.stopping:
            return
        if event.get("Event") == "Newchannel" and event.get("Uniqueid") == event.get("Linkedid"):
            self.calls_seen.inc()
        if session is not None:  # a new session may be a restarted Asterisk
            self.tracker.session(session)
        now = self.monotonic()
        for outcome in self.tracker.handle(event, now):
            self.report(self.routes.annotate(outcome))
        self.routes.handle(event, now, self.tracker.agent_lookup)

    def expire(self) -> None:
        """Close the calls no Cdr or Hangup came for."""
        now = self.monotonic()
        for outcome in self.tracker.expire(now):
            self.report(self.routes.annotate(outcome))
        self.routes.expire(now)

    def report(self, outcome: Outcome) -> None:
        """One log line per ended call or request; each goes on to be decided or recorded."""
        if self.pbx:
            outcome = replace(outcome, pbx=self.pbx)
        if outcome.linkedid in self.callback_calls:
            self.log.info("callback_call_ended", linkedid=outcome.linkedid,
                          agent_extension=outcome.agent_extension or None)
            return
        if isinstance(outcome, CallClosed):
            # call_evicted is the name this has always had; the others are new
            event = {Trigger.CALL_TIMEOUT: "call_evicted", Trigger.EVICTED: "channel_evicted"}.get(
                outcome.trigger, "call_closed")
            # A call no agent answered is everyday traffic, not trouble: info, not warning.
            emit = self.log.info if outcome.trigger == Trigger.NOT_ANSWERED else self.log.warning
            emit(event, linkedid=outcome.linkedid, trigger=outcome.trigger,
                             agent_extension=outcome.agent_extension or None,
                             customer=mask_number(outcome.customer_number) or None,
                             reason=outcome.reason)
            if not outcome.customer_number:
                return  # nothing to trace it by: the log line is its record
        elif isinstance(outcome, CallEnded):
            self.log.info("call_ended", linkedid=outcome.linkedid,
                          agent_extension=outcome.agent_extension,
                          customer=mask_number(outcome.customer_number),
                          talk_seconds=round(outcome.talk_seconds, 1),
                          decided_from=outcome.decided_from)
        else:
            self.log.info("card_requested", linkedid=outcome.linkedid,
                          agent_extension=outcome.agent_extension, trigger=outcome.trigger)
        self.calls_ended.inc()
        self.outcomes.put_nowait(outcome)
