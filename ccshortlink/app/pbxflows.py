"""Several PBXs: each one's AMI events through its own tracker, every outcome into one queue."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from ccshortlink.app.callflow import CallFlow
from ccshortlink.app.ports import Counter, Log
from ccshortlink.app.reloading import call_tracker
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.calls import CallTracker, Outcome
from ccshortlink.core.policy import PolicyConfig


class PbxFlows:
    """One CallFlow per PBX, by name: Linkedids, channels and `*55` never cross PBXs (each
    Asterisk numbers its own), and a restart is told per PBX. One queue feeds the decider."""

    def __init__(self, flows: Mapping[str, CallFlow],
                 outcomes: asyncio.Queue[Outcome]) -> None:
        self.flows = dict(flows)
        self.outcomes = outcomes

    @classmethod
    def build(cls, names: Sequence[str], policy: PolicyConfig, agents: AgentDirectory,
              log: Log, *, calls_seen: Counter, calls_ended: Counter) -> PbxFlows:
        outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        several = len(names) > 1  # one PBX: its lines read exactly as they always have
        return cls({name: CallFlow(
            call_tracker(policy, agents, name), log.bind(pbx=name) if several else log,
            calls_seen=calls_seen, calls_ended=calls_ended, pbx=name, outcomes=outcomes)
            for name in names}, outcomes)

    @property
    def trackers(self) -> dict[str, CallTracker]:
        return {name: flow.tracker for name, flow in self.flows.items()}

    def on_event(self, pbx: str, event: Mapping[str, str], session: int | None) -> None:
        """Runs on the loop for every AMI event of `pbx`, in order."""
        self.flows[pbx].on_event(event, session)

    def mark_callback(self, pbx: str, linkedid: str) -> None:
        """A call-back's own call on `pbx`: it ends without a card."""
        flow = self.flows.get(pbx)
        if flow is not None:
            flow.mark_callback(linkedid)

    def expire(self) -> None:
        for flow in self.flows.values():
            flow.expire()

    def stop_deciding(self) -> None:
        """At the stop: later events are not turned into decisions."""
        for flow in self.flows.values():
            flow.stopping = True

    def calls_in_progress(self) -> dict[str, list[str]]:
        """Each PBX's Linkedids with a customer still on the line (only PBXs that have some)."""
        return {name: left for name, flow in self.flows.items()
                if (left := flow.tracker.calls_in_progress())}

    def report_left(self) -> None:
        """At the stop, a line per PBX with calls still up: the next start decides them from
        their Cdr, or records why not."""
        for name, left in self.calls_in_progress().items():
            self.flows[name].log.info("calls_in_progress_at_stop", count=len(left),
                                      linkedids=left[:100])


def ami_health(names: Sequence[str], up: Mapping[str, bool]) -> dict[str, object]:
    """/healthz's AMI part: `ami` is up (every PBX), degraded (some) or down (none); with
    several PBXs, `pbxs` gives each one's state by name."""
    states = {name: "up" if up.get(name) else "down" for name in names}
    count = sum(state == "up" for state in states.values())
    overall = "up" if count == len(names) else "down" if count == 0 else "degraded"
    return {"ami": overall, **({"pbxs": states} if len(names) > 1 else {})}
