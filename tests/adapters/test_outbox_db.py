"""The sending path when the database is busy, locked or refusing: batches, WAL, lock, faults."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from ccshortlink.app.outbox import Outbox
from ccshortlink.app.sending import CardService
from ccshortlink.config.agents import load_agents
from ccshortlink.core.calls import CallEnded
from ccshortlink.core.links import SmsTemplates
from ccshortlink.core.records import ReceiptRecord, SubmittedSms
from ccshortlink.core.sms import EncodedSms
from ccshortlink.ops.logs import get_logger
from ccshortlink.store import Store, base
from tests.support.outboxkit import CUSTOMER, RecordingGateway


class FailingTemplates:
    """Renders like the real templates, but refuses one agent (a broken template, say)."""

    def __init__(self, real: SmsTemplates, broken_agent: str) -> None:
        self.real, self.broken_agent = real, broken_agent

    def render(self, agent, url, code, region):  # type: ignore[no-untyped-def]
        if agent.id == self.broken_agent:
            raise ValueError("template error for this agent")
        return self.real.render(agent, url, code, region)


async def test_a_batch_decides_in_order_and_a_failure_loses_only_itself(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    agents = load_agents(config.agents_file)
    broken = FailingTemplates(SmsTemplates(config.sms.templates, config.sms.default_language),
                              "CS1002")
    batch_cards = CardService(store=store, config=config, agents=lambda: agents,
                              templates=lambda: broken, clock=clock, log=get_logger())
    other = "+8613900139000"
    results = await batch_cards.handle_many([
        CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30),
        CallEnded("2.0", "1002", other, talk_seconds=30),  # its template fails
        CallEnded("3.0", "1001", CUSTOMER, talk_seconds=30),  # same pair, same batch
        CallEnded("4.0", "1001", other, talk_seconds=30),
    ])
    first, failed, again, fourth = results
    assert isinstance(failed, ValueError)
    assert first.status == "queued" and fourth.status == "queued"
    # The second call of the pair sees the first one's SMS, written moments before in the
    # same transaction: the resend window holds inside a batch too.
    assert again.status == "skipped" and "within" in again.reason
    rows = await store._all("SELECT linkedid, outcome FROM decisions ORDER BY id")
    assert [tuple(r) for r in rows] == [("1.0", "sent"), ("3.0", "skipped"), ("4.0", "sent")]
    assert (await store._all("SELECT COUNT(*) FROM links"))[0][0] == 2
    assert await store.sms_status_counts() == {"queued": 2}


async def test_claim_says_when_the_next_deferred_sms_falls_due(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    await store._write(lambda db: db.execute("UPDATE sms SET not_before = ?", (clock() + 600,)))
    claimed = await store.claim_due_sms(clock(), 10)
    assert claimed.sms == [] and claimed.next_due_at == clock() + 600
    assert len((await store.claim_due_sms(clock() + 600, 10)).sms) == 1


@pytest.mark.sqlite_only
async def test_daemon_checkpoints_the_wal_itself(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    await store.take_over_checkpoints()
    assert (await store._one("PRAGMA wal_autocheckpoint"))[0] == base.WAL_BACKSTOP_PAGES
    for n in range(20):
        await cards.handle(CallEnded(f"{n}.0", "1001", f"+86139001{n:05d}", talk_seconds=30))
    wal = store.path.with_name(store.path.name + "-wal")
    frames, copied = await store.checkpoint()
    assert frames > 0 and copied == frames  # everything the commits left is in the database
    size = wal.stat().st_size
    for n in range(20, 40):
        await cards.handle(CallEnded(f"{n}.0", "1001", f"+86139001{n:05d}", talk_seconds=30))
    await store.checkpoint()
    assert wal.stat().st_size <= size  # written over from the start, not appended to


@pytest.mark.sqlite_only
async def test_a_wal_that_keeps_growing_is_copied_under_the_lock_and_started_over(
        env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    # Under steady load a commit lands during every passive copy; past the threshold the
    # daemon finishes the copy with no commit in between, so the WAL is written from its
    # start again instead of growing.
    import sqlite3

    monkeypatch.setattr(base, "WAL_RESTART_PAGES", 8)
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    reader = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE IF NOT EXISTS load (x)")
    checkpoint = base._wal_checkpoint

    def copy_while_a_commit_lands(db: sqlite3.Connection, mode: str) -> tuple[int, int]:
        if mode != "PASSIVE":
            return checkpoint(db, mode)
        # A commit that lands while the copy runs: the copy stops short of it (a reader's
        # snapshot from before it is what makes that deterministic here).
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM load").fetchone()
        other.execute("INSERT INTO load VALUES (1)")
        result = checkpoint(db, mode)
        reader.execute("COMMIT")
        return result

    monkeypatch.setattr(base, "_wal_checkpoint", copy_while_a_commit_lands)
    await store.take_over_checkpoints()
    wal = store.path.with_name(store.path.name + "-wal")
    sizes = []
    for round_ in range(4):
        for n in range(10):
            await cards.handle(CallEnded(f"{round_}.{n}", "1001", f"+8613900{round_}{n:05d}",
                                         talk_seconds=30))
        await store.checkpoint()
        sizes.append(wal.stat().st_size)
    other.close()
    reader.close()
    assert sizes[-1] <= sizes[0] * 1.5  # not 4 rounds' worth: reused from the start


@pytest.mark.sqlite_only
async def test_another_process_holding_the_write_lock_never_stalls_the_loop(env) -> None:  # type: ignore[no-untyped-def]
    import sqlite3
    import threading
    import time

    config, store, cards, clock = env
    held, release = threading.Event(), threading.Event()

    def other_process() -> None:  # e.g. the CLI's opt-out, holding the lock a while
        db = sqlite3.connect(store.path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(5)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    held.wait(5)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while not release.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)  # ticking already
    threading.Timer(0.5, release.set).start()  # not on the loop: it may be the one stuck
    outcome = await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    await ticking
    thread.join()
    assert outcome.status == "queued"  # written once the other writer let go
    assert max(gaps) < 0.2  # the loop kept turning meanwhile (SQLite's own wait is 20 ms)


async def test_a_thread_job_is_waited_for_even_when_its_caller_is_cancelled() -> None:
    import time

    from ccshortlink.store.base import _outlast_cancellation

    job = asyncio.ensure_future(asyncio.to_thread(time.sleep, 0.3))
    started = time.monotonic()
    caller = asyncio.create_task(_outlast_cancellation(job))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert job.done() and time.monotonic() - started >= 0.29


async def test_a_receipt_that_fails_does_not_take_its_batch_down(env) -> None:  # type: ignore[no-untyped-def]
    from ccshortlink.core.records import ReceiptRecord

    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    [sms] = (await store.claim_due_sms(clock(), 10)).sms
    await store.mark_submitted(sms.id, ["7a", "7b"], clock())
    results = await store.record_receipts([
        ReceiptRecord("7a", "DELIVRD", "000", clock()),
        ReceiptRecord(None, "DELIVRD", "000", clock()),  # type: ignore[arg-type]  # garbage
        ReceiptRecord("1\u00b2", "DELIVRD", "000", clock()),  # "1²": a digit, not a number
        ReceiptRecord("7b", "DELIVRD", "000", clock()),
    ])
    assert results[0] == sms.id and results[3] == sms.id
    assert isinstance(results[1], AttributeError)
    assert results[2] is None  # unknown, not an error
    assert await store.sms_status_counts() == {"delivered": 1}
    kinds = await store._all("SELECT kind FROM sms_events WHERE kind = 'receipt'")
    assert len(kinds) == 2


async def test_message_ids_of_a_batch_land_on_each_part_of_each_sms(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    for n, number in enumerate((CUSTOMER, "+8613900139000", "+8613900139001")):
        await cards.handle(CallEnded(f"{n}.0", "1001", number, talk_seconds=30))
    claimed = (await store.claim_due_sms(clock(), 10)).sms
    ids = {sms.id: (f"{sms.id}a", f"{sms.id}b") for sms in claimed}
    await store.mark_submitted_many([SubmittedSms(i, mids, clock()) for i, mids in ids.items()])
    assert await store.sms_status_counts() == {"submitted": 3}
    for sms_id, (first, second) in ids.items():
        assert await store.record_receipts([ReceiptRecord(second, "DELIVRD", "000", clock())]
                                           ) == [sms_id]
        assert await store.record_receipts([ReceiptRecord(first, "DELIVRD", "000", clock())]
                                           ) == [sms_id]
    events = await store._all("SELECT sms_id, detail FROM sms_events WHERE kind = 'submitted'"
                              " ORDER BY sms_id")
    assert [tuple(e) for e in events] == [(i, f"message ids {a},{b}")
                                          for i, (a, b) in sorted(ids.items())]


async def test_a_call_that_cannot_be_prepared_fails_alone_and_queued_sms_are_counted(
        env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    counted: list[int] = []
    cards.on_queued = counted.append
    broken = CallEnded("2.0", "1001", object(), talk_seconds=30)  # type: ignore[arg-type]
    results = await cards.handle_many([
        CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30), broken,
        CallEnded("3.0", "1002", "+8613900139000", talk_seconds=30)])
    assert results[0].status == results[2].status == "queued"
    assert isinstance(results[1], Exception)
    assert counted == [2]  # one wake-up, both SMS counted


@pytest.mark.sqlite_only
async def test_calls_the_database_refuses_wait_in_order_and_only_a_full_backlog_drops(
        env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from ccshortlink.app.decider import Decider
    from ccshortlink.core.calls import CallEnded
    from ccshortlink.ops.metrics import Metrics
    from ccshortlink.store import base

    config, store, cards, _ = env
    monkeypatch.setattr(base, "BUSY_WAIT", 0.1)  # give up on the lock quickly: a fault
    metrics = Metrics()
    decider = Decider(lambda: cards.handle_many, get_logger(), metrics, limit=2,
                      is_fault=store.is_fault)
    other = sqlite3.connect(config.database_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process's transaction
    queue: asyncio.Queue[CallEnded] = asyncio.Queue()
    for i in range(3):
        queue.put_nowait(CallEnded(f"1.{i}", "1001", f"+86138001380{i:02d}", talk_seconds=30))
    stop = asyncio.Event()
    task = asyncio.create_task(decider.run(queue, stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if decider.failing:
            break
    assert decider.failing and len(decider.backlog) == 2
    assert metrics.registry.get_sample_value("ccshortlink_decisions_dropped_total") == 1
    other.execute("ROLLBACK")
    other.close()
    for _ in range(200):
        await asyncio.sleep(0.05)
        if not decider.backlog:
            break
    stop.set()
    await task
    rows = await store._all("SELECT linkedid FROM decisions ORDER BY id")
    assert [r[0] for r in rows] == ["1.0", "1.1"]  # in order, each once
    assert (await store.sms_status_counts()) == {"queued": 2}


@pytest.mark.sqlite_only
async def test_message_ids_the_database_refuses_are_kept_and_the_sms_is_not_sent_again(
        env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from ccshortlink.store import base

    config, store, cards, clock = env
    monkeypatch.setattr(base, "BUSY_WAIT", 0.1)  # the lock below is a fault, not a wait
    await cards.handle(CallEnded("1.0", "1001", "13800138000", talk_seconds=30))
    other = sqlite3.connect(config.database_path, isolation_level=None)

    class LockingGateway(RecordingGateway):
        """The SMSC accepts; meanwhile another process takes the database for a while."""

        async def submit(self, destination: str, sms: EncodedSms) -> list[str]:
            other.execute("BEGIN EXCLUSIVE")
            asyncio.get_running_loop().call_later(1.5, other.execute, "ROLLBACK")
            return await super().submit(destination, sms)

    gateway = LockingGateway()
    outbox = Outbox(store=store, gateway=gateway, clock=clock, log=get_logger(),
                    max_attempts=3, concurrency=4)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if await _status_or_none(store) == {"submitted": 1}:
            break
    stop.set()
    await task
    other.close()
    assert len(gateway.submitted) == 1
    assert await store.sms_status_counts() == {"submitted": 1}
    rows = await store._all("SELECT message_id FROM sms_parts WHERE message_id IS NOT NULL")
    assert [r[0] for r in rows] == ["m1-0", "m1-1"]


async def _status_or_none(store: Store) -> dict[str, int] | None:
    try:
        return await store.sms_status_counts()
    except sqlite3.OperationalError:
        return None


async def test_a_new_code_that_clashes_is_drawn_again_and_its_batch_loses_nothing(env) -> None:  # type: ignore[no-untyped-def]
    """A new link's code already taken (astronomically rare, but the database says so):
    drawn again, and the batch's other calls are decided once as if nothing happened (on
    PostgreSQL the batch is rolled back and decided again call by call)."""
    config, store, cards, clock = env
    first = await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    drawn = iter([first.code] + [f"fresh{n:04d}" for n in range(10)])
    agents = load_agents(config.agents_file)
    templates = SmsTemplates(config.sms.templates, config.sms.default_language)
    clashing = CardService(store=store, config=config, agents=lambda: agents,
                           templates=lambda: templates, clock=clock, log=get_logger(),
                           code_factory=lambda: next(drawn))
    outcomes = await clashing.handle_many([
        CallEnded("2.0", "1001", "+8613900139000", talk_seconds=30),
        CallEnded("3.0", "1002", "+8613900139001", talk_seconds=30)])
    assert [o.status for o in outcomes] == ["queued", "queued"]
    codes = {first.code, *(o.code for o in outcomes)}
    assert len(codes) == 3 and all(c.startswith("fresh") for c in codes - {first.code})
    rows = await store._all("SELECT linkedid, outcome FROM decisions ORDER BY id")
    assert [tuple(r) for r in rows] == [("1.0", "sent"), ("2.0", "sent"), ("3.0", "sent")]
    assert (await store._all("SELECT COUNT(*) FROM links"))[0][0] == 3
    assert await store.sms_status_counts() == {"queued": 3}
