"""What SQLite costs per answered call: use cases on the loop's thread vs a thread hop each.

Run: .venv/bin/python -m bench store [--calls 1000] [--repeats 3] [--no-busy-loop]

Every call gets the database work the daemon gives it: policy facts and decision, link + SMS +
decision record, claim from the outbox, mark submitted (2 message ids), 2 delivery receipts.
Three variants of the real ccshortlink.store.Store take turns (A B C A B C ...), each run on a
fresh SQLite file in a temporary folder (the Store sets its own PRAGMAs); the table shows the
median of --repeats runs:
  thread hop per use case (before)  the Store with `_read` handing each use case to aiosqlite's
                                    thread, as it used to; single-call use cases one call at
                                    a time (send_facts, issue_link, claim_due_sms,
                                    mark_submitted, record_receipt x2)
  loop thread, one call at a time   today's Store (use cases run on the loop's thread), the
                                    same single-call sequence
  loop thread, batches of 64        today's Store with the batch use cases the daemon uses
                                    under load: decide_cards, claim_due_sms,
                                    mark_submitted_many, record_receipts
A run fails unless every call's SMS ends up delivered, so a broken variant cannot report a time.

--busy-loop (the default) keeps both the loop's thread and another thread partly busy while a
variant is measured, as the daemon's AMI parsing and SMPP thread do: this is what makes a thread
hop expensive (the database thread waits for the interpreter lock at every statement). The
load's own CPU time is left out of the CPU column: its parsing measured on each thread's clock,
its timer wake-ups on the loop at a cost per wake-up measured once on an idle loop. The wall
column includes the loop's turns at the load. --no-busy-loop measures an otherwise idle process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from bench.busyload import LOOP_REST_S, LOOP_WORK_S, THREAD_REST_S, THREAD_WORK_S, BusyLoad
from bench.hopstore import HopStore, count_hops
from bench.report import median, table
from ccshortlink.core.policy import (
    CustomerNumber,
    Decision,
    PolicyConfig,
    SendFacts,
    day_start,
    decide,
)
from ccshortlink.core.records import (
    CardRequest,
    DecisionRecord,
    OutboxSms,
    ReceiptRecord,
    SmsDraft,
    SubmittedSms,
)
from ccshortlink.core.sms import encode_sms
from ccshortlink.store import Store

BATCH = 64  # calls per batch use case, as the daemon groups them under load
TEXT = ("您好，刚才为您服务的是王小梅（工号CS1001）。"
        "下次可直接联系TA：https://cs.example.com/{code} 回TD退订")
TALK_SECONDS = 42.0

class BenchError(Exception):
    """A variant did not do the work it is timed for."""


@dataclass(frozen=True)
class Plan:
    """One run's clock and policy: each call is answered long enough, to a new mobile number."""

    now: float
    policy: PolicyConfig
    day_start: float
    new_code: Callable[[], str]

    @classmethod
    def today(cls) -> Plan:
        """A plan for now; no talk-time minimum or resend window: policy sends every call."""
        policy = PolicyConfig(min_talk_seconds=0, resend_window_hours=0)
        now = time.time()
        codes = (f"C{n:08d}" for n in itertools.count())
        return cls(now=now, policy=policy, day_start=day_start(now, policy.timezone),
                   new_code=partial(next, codes))

    @property
    def pair_since(self) -> float:
        """Start of the resend window, as CardService computes it."""
        return self.now - self.policy.resend_window_hours * 3600

    @property
    def ttl(self) -> float:
        """Link lifetime in seconds."""
        return self.policy.link_ttl_days * 86400

    def record(self, n: int) -> DecisionRecord:
        """Call n's decision record, outcome still to be judged."""
        return DecisionRecord(linkedid=f"1700000000.{n}", trigger="hangup", agent_id="CS1001",
                              agent_extension="1001", customer_number=_number(n),
                              talk_seconds=TALK_SECONDS, outcome="", reason="")

    def judge(self, n: int) -> Callable[[SendFacts], Decision]:
        """The real policy for call n, as CardService._card_request builds it."""
        customer = CustomerNumber(e164=_number(n), region="CN", time_zone=self.policy.timezone)
        return lambda facts: decide(trigger="hangup", talk_seconds=TALK_SECONDS,
                                    card_already_sent=False, facts=facts, customer=customer,
                                    policy=self.policy, now=self.now)

    def request(self, n: int) -> CardRequest:
        """Call n as one request of a decide_cards batch."""
        return CardRequest(record=self.record(n), customer_region="CN",
                           pair_since=self.pair_since, day_start=self.day_start, ttl=self.ttl,
                           judge=self.judge(n), draft=_draft)


def _number(n: int) -> str:
    """A distinct mobile number per call, so the daily cap never skips one."""
    return f"+86139{n:08d}"


def _draft(code: str, not_before: float) -> SmsDraft:
    """The SMS for a code: the default Chinese template, encoded (2 UCS-2 parts)."""
    text = TEXT.format(code=code)
    encoded = encode_sms(text, 0x1234)
    return SmsDraft(text=text, data_coding=encoded.data_coding, esm_class=encoded.esm_class,
                    parts=encoded.parts, not_before=not_before, expires_at=not_before + 86400)


def _message_ids(sms: OutboxSms) -> tuple[str, ...]:
    """The ids an SMSC would answer submit_sm with, one per part."""
    return tuple(f"m{sms.id}-{part}" for part in range(len(sms.parts)))


async def _between_use_cases() -> None:
    """Give the loop a turn: in the daemon each use case follows a socket read or a timer."""
    await asyncio.sleep(0)


async def one_at_a_time(store: Store, calls: int) -> None:
    """Each call through the single-call use cases, in turn, as the daemon did before batching."""
    plan = Plan.today()
    for n in range(calls):
        record = plan.record(n)
        facts = await store.send_facts(record.agent_id, record.customer_number,
                                       pair_since=plan.pair_since, day_start=plan.day_start)
        decision = plan.judge(n)(facts)
        if decision.outcome != "send":
            raise BenchError(f"call {n}: policy said {decision.outcome} ({decision.reason})")
        await _between_use_cases()
        await store.issue_link(
            agent_id=record.agent_id, customer_number=record.customer_number,
            linkedid=record.linkedid, now=plan.now, ttl=plan.ttl, new_code=plan.new_code,
            # called within this await, before the loop rebinds `decision`
            sms=lambda code: _draft(code, decision.not_before),  # noqa: B023
            customer_region="CN",
            decision=replace(record, outcome="sent", reason=decision.reason))
        await _between_use_cases()
        for sms in (await store.claim_due_sms(plan.now, 1)).sms:
            await _between_use_cases()
            ids = _message_ids(sms)
            await store.mark_submitted(sms.id, ids, plan.now)
            for message_id in ids:
                await _between_use_cases()
                await store.record_receipt(message_id, "DELIVRD", "000", plan.now)
        await _between_use_cases()


async def in_batches(store: Store, calls: int) -> None:
    """BATCH calls per use case: decide, claim, mark submitted, receipts."""
    plan = Plan.today()
    for first in range(0, calls, BATCH):
        batch = range(first, min(first + BATCH, calls))
        results = await store.decide_cards([plan.request(n) for n in batch], plan.now,
                                           plan.new_code)
        for result in results:
            if isinstance(result, Exception) or result.record.outcome != "sent":
                raise BenchError(f"decide_cards: {result!r}")
        await _between_use_cases()
        claimed = (await store.claim_due_sms(plan.now, BATCH)).sms
        await _between_use_cases()
        await store.mark_submitted_many(
            [SubmittedSms(sms.id, _message_ids(sms), plan.now) for sms in claimed])
        await _between_use_cases()
        await store.record_receipts([ReceiptRecord(message_id, "DELIVRD", "000", plan.now)
                                     for sms in claimed for message_id in _message_ids(sms)])
        await _between_use_cases()


@dataclass(frozen=True)
class Variant:
    name: str
    store: type[Store]
    work: Callable[[Store, int], Awaitable[None]]


VARIANTS = (
    Variant("thread hop per use case (before)", HopStore, one_at_a_time),
    Variant("loop thread, one call at a time", Store, one_at_a_time),
    Variant(f"loop thread, batches of {BATCH} (daemon under load)", Store, in_batches),
)


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # seconds, the whole process less the busy load's own
    hops: int


async def run_variant(variant: Variant, path: Path, calls: int, load: BusyLoad) -> Run:
    """One measured run on a fresh file: opening and migrations are left out."""
    async with await variant.store.open(path) as store:
        hops = count_hops(store)
        cpu = time.process_time()  # before the load starts, so all of its CPU is subtracted
        async with load:
            wall = time.perf_counter()
            await variant.work(store, calls)
            wall = time.perf_counter() - wall
            made = hops()
        cpu = time.process_time() - cpu - load.cpu_seconds
        counts = await store.sms_status_counts()
    if counts != {"delivered": calls}:
        raise BenchError(f"{variant.name}: SMS by status {counts}, want {calls} delivered")
    return Run(wall=wall, cpu=cpu, hops=made)


def measure(calls: int, repeats: int, busy: bool, wake_cost: float) -> list[list[str]]:
    """Table rows: each variant's median over `repeats` turns."""
    runs: dict[str, list[Run]] = {variant.name: [] for variant in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:  # taking turns: a noisy neighbour slows all alike
            with tempfile.TemporaryDirectory(prefix="ccshortlink-store-") as tmp:
                load = BusyLoad(busy, wake_cost)
                runs[variant.name].append(
                    asyncio.run(run_variant(variant, Path(tmp) / "store.db", calls, load)))
    base = median([run.cpu for run in runs[VARIANTS[0].name]])
    rows = []
    for name, done in runs.items():
        cpu = median([run.cpu for run in done])
        rows.append([name, f"{median([run.hops for run in done]) / calls:.1f}",
                     f"{median([run.wall for run in done]) * 1000 / calls:.3f}",
                     f"{cpu * 1000 / calls:.3f}", f"{cpu / base:.2f}×"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy-loop", action=argparse.BooleanOptionalAction, default=True,
                        help="keep the loop and another thread partly busy (default: on)")
    args = parser.parse_args(argv)
    wake_cost = asyncio.run(BusyLoad.calibrate()) if args.busy_loop else 0.0
    rows = measure(args.calls, args.repeats, args.busy_loop, wake_cost)
    if args.busy_loop:
        mode = (f"busy loop: on (AMI parsing on the loop {LOOP_WORK_S * 1000:g} ms of every "
                f"{(LOOP_WORK_S + LOOP_REST_S) * 1000:g}, on a thread {THREAD_WORK_S * 1000:g} ms"
                f" of every {(THREAD_WORK_S + THREAD_REST_S) * 1000:g})")
    else:
        mode = "busy loop: off (idle process)"
    print(f"{args.calls} calls per run, median of {args.repeats}; {mode}; "
          f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms")
    if args.busy_loop:
        print(f"CPU = this process, all threads, less the busy load's own (its parsing, and "
              f"{wake_cost * 1e6:.0f} µs per wake-up of the loop, measured idle); "
              f"wall includes the loop's turns at the load")
    else:
        print("CPU = this process, all threads")
    print()
    print(table(["variant", "thread hops per call", "wall ms per call", "CPU ms per call",
                 "CPU vs before"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
