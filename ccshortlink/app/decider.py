"""Decides finished calls in order, in batches, and keeps those the database refuses for later."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from ccshortlink.app.dbfaults import Outage
from ccshortlink.app.pending import DECISION_BACKLOG, DecisionBacklog
from ccshortlink.app.ports import DecisionCounters, FaultTest, Log
from ccshortlink.app.sending import CardOutcome
from ccshortlink.core.calls import Outcome
from ccshortlink.core.describe import describe
from ccshortlink.core.privacy import mask_number

# A batch is one transaction run on the loop's thread: its size bounds how long AMI waits.
DECISION_BATCH = 64
# At shutdown, how long calls still refused by the database are tried before given up on.
STOP_GRACE = 5.0

HandleMany = Callable[[Sequence[Outcome]], Awaitable[list[CardOutcome | Exception]]]


class Decider:
    """Takes finished calls from the tracker's queue and records a decision for each.

    A batch the database refuses (locked, disk full, I/O error) stays at the front of the
    backlog, in order, and is tried again with backoff: its transaction was rolled back
    whole, so a retry cannot record anything twice. Only a full backlog refuses a call,
    loudly. An error that is not the database's (a bug met by one call) is logged as
    `decision_failed` and not tried again.
    """

    def __init__(self, handle_many: Callable[[], HandleMany], log: Log,
                 metrics: DecisionCounters, *, is_fault: FaultTest,
                 limit: int = DECISION_BACKLOG,
                 stop_grace: Callable[[], float] = lambda: STOP_GRACE) -> None:
        self.handle_many = handle_many  # read at each batch: the card service may be reloaded
        self.log = log
        self.metrics = metrics
        self.backlog: DecisionBacklog[Outcome] = DecisionBacklog(limit)
        self.is_fault = is_fault  # the store's: a database fault, which a retry may get past
        self.stop_grace = stop_grace  # read at the stop: what is left of the shutdown budget
        self.outage = Outage(log, "decisions", self.is_fault)

    @property
    def failing(self) -> bool:
        """The database refused the last try and decisions are waiting for it."""
        return self.outage.since is not None and len(self.backlog) > 0

    async def run(self, queue: asyncio.Queue[Outcome], stop: asyncio.Event) -> None:
        """Until `stop` and everything queued is decided (or given up on after `stop_grace()`)."""
        loop = asyncio.get_running_loop()
        give_up_at: float | None = None
        while True:
            self._take(queue)
            if stop.is_set():
                if not self.backlog:
                    return
                give_up_at = give_up_at or loop.time() + self.stop_grace()
                if loop.time() >= give_up_at:
                    self._drop(self.backlog.take_all(), "the database still refused it at stop")
                    return
            if not self.backlog:
                with contextlib.suppress(TimeoutError):
                    self._keep(await asyncio.wait_for(queue.get(), timeout=0.2))
                continue
            delay = await self._decide_front()
            if delay:
                if stop.is_set():
                    await asyncio.sleep(min(delay, 0.5))
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _decide_front(self) -> float:
        """Try the oldest batch; the delay before the next try when the database refused."""
        batch = self.backlog.front(DECISION_BATCH)
        try:
            results: list[CardOutcome | Exception] = await self.handle_many()(batch)
        except Exception as exc:  # the whole batch's transaction failed
            results = [exc] * len(batch)
        again = [isinstance(r, Exception) and self.is_fault(r) for r in results]
        self.backlog.settle(batch, again)
        self.metrics.decisions_waiting.set(len(self.backlog))
        for outcome, result, retry in zip(batch, results, again, strict=True):
            if isinstance(result, Exception) and not retry:
                self.log.error("decision_failed", linkedid=outcome.linkedid, error=repr(result))
        fault = next((r for r, retry in zip(results, again, strict=True)
                      if retry and isinstance(r, Exception)), None)
        if fault is None:
            self.outage.succeeded()
            return 0.0
        if self.outage.since is None:
            self.log.warning("decisions_waiting", calls=len(self.backlog), limit=self.backlog.limit,
                             error=describe(fault))
        return self.outage.failed(fault)

    def _take(self, queue: asyncio.Queue[Outcome]) -> None:
        while not queue.empty():
            self._keep(queue.get_nowait())

    def _keep(self, outcome: Outcome) -> None:
        if not self.backlog.add(outcome):
            self._drop([outcome], f"{self.backlog.limit} calls already wait for the database")
        self.metrics.decisions_waiting.set(len(self.backlog))

    def _drop(self, outcomes: Sequence[Outcome], reason: str) -> None:
        for outcome in outcomes:
            self.log.error("decision_dropped", linkedid=outcome.linkedid,
                           trigger=outcome.trigger, agent_extension=outcome.agent_extension,
                           customer=mask_number(outcome.customer_number) or None,
                           reason=reason)
            self.metrics.decisions_dropped.inc()
        self.metrics.decisions_waiting.set(len(self.backlog))
