"""Follows each call's route (who started it, its queues) from the AMI events; pure, no I/O.

Kept beside the CallTracker, fed the same events, so the tracker's own bookkeeping is untouched:
the route of a call is read when the tracker concludes it, and forgotten once its last channel
hangs up (or after `timeout`, or beyond `max_calls`, for the calls whose Hangups were lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ccshortlink.core.callrecords import AgentLookup, CallClosed, CallEnded, Event, Outcome
from ccshortlink.core.callroute import CallRoute


@dataclass
class _Route:
    started_by_agent: bool
    queues: list[str] = field(default_factory=list)
    abandoned: bool = False
    channels: int = 0  # live channels of the call: at 0 the call is over
    last_seen: float = 0.0


class RouteBook:
    """Feed every AMI event with `handle`; `route(linkedid)` says how that call ran."""

    def __init__(self, *, max_calls: int = 20000, timeout: float = 12 * 3600.0) -> None:
        self.max_calls = max_calls
        self.timeout = timeout
        self._routes: dict[str, _Route] = {}

    def __len__(self) -> int:
        return len(self._routes)

    def route(self, linkedid: str) -> CallRoute | None:
        found = self._routes.get(linkedid)
        if found is None:
            return None
        return CallRoute(found.started_by_agent, tuple(found.queues), found.abandoned)

    def annotate(self, outcome: Outcome) -> Outcome:
        """The tracker's conclusion with its call's route attached (when the route is known)."""
        if not isinstance(outcome, CallEnded | CallClosed) or outcome.route is not None:
            return outcome
        route = self.route(outcome.linkedid)
        return outcome if route is None else replace(outcome, route=route)

    def handle(self, event: Event, now: float, agent_lookup: AgentLookup) -> None:
        """Call after the tracker has concluded on `event`: a Hangup may end the route."""
        name = event.get("Event", "")
        linkedid = event.get("Linkedid", "") or event.get("Uniqueid", "")
        if name == "Newchannel" and linkedid and event.get("Uniqueid") == linkedid:
            self._start(linkedid, event, now, agent_lookup)
        found = self._routes.get(linkedid)
        if found is None:
            return
        found.last_seen = now
        if name == "Newchannel":
            found.channels += 1
        elif name == "QueueCallerJoin" and event.get("Queue"):
            found.queues.append(event["Queue"])
        elif name == "QueueCallerAbandon":
            found.abandoned = True
        elif name == "Hangup":
            found.channels -= 1
            if found.channels <= 0:
                del self._routes[linkedid]

    def expire(self, now: float) -> None:
        """Forget the calls whose last Hangup never came."""
        for linkedid, found in list(self._routes.items()):
            if now - found.last_seen > self.timeout:
                del self._routes[linkedid]

    def clear(self) -> None:
        self._routes.clear()

    def _start(self, linkedid: str, event: Event, now: float, agent_lookup: AgentLookup) -> None:
        if len(self._routes) >= self.max_calls:
            del self._routes[next(iter(self._routes))]  # the oldest: its Hangup was lost
        # A Local channel counts too: an Originate of Local/1001@from-internal is the agent
        # calling out (click-to-dial, call-back), as a SIP/1001 channel dialling is.
        agent = agent_lookup(event.get("Channel", ""), event.get("CallerIDNum", ""))
        self._routes[linkedid] = _Route(started_by_agent=agent is not None, last_seen=now)
