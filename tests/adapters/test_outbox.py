"""Cards, the store and the outbox together, on a real SQLite file, with a recording gateway."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ccshortlink.core.calls import CallEnded, SendRequested
from ccshortlink.core.sms import decode_parts
from ccshortlink.smpp.client import SubmitRejected
from ccshortlink.store import Store
from tests.support.outboxkit import CUSTOMER, RecordingGateway, drain


async def test_answered_call_becomes_one_submitted_sms(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    outcome = await cards.handle(CallEnded("1.0", "1001", "13800138000", talk_seconds=30))
    assert outcome.status == "queued" and outcome.sms_id == 1
    gateway = RecordingGateway()
    await drain(store, gateway, clock)
    [(destination, sms)] = gateway.submitted
    assert destination == CUSTOMER
    text = decode_parts(sms.data_coding, sms.esm_class, sms.parts)
    assert f"https://cs.example.com/{outcome.code}" in text and "王小梅" in text
    assert sms.data_coding == 8  # Chinese: UCS-2
    assert await store.sms_status_counts() == {"submitted": 1}
    view = await store.link_for_page(outcome.code, clock())
    assert view is not None and view.agent_id == "CS1001" and view.status == "live"


async def test_same_pair_is_suppressed_and_reuses_its_link(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    first = await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    clock.now += 60
    second = await cards.handle(CallEnded("2.0", "1001", CUSTOMER, talk_seconds=30))
    assert second.status == "skipped" and "within 24h" in second.reason
    # another agent gets another link
    other = await cards.handle(CallEnded("3.0", "1002", CUSTOMER, talk_seconds=30))
    assert other.status == "queued" and other.code != first.code
    # after the resend window the pair gets an SMS again, with the same live link
    clock.now += 25 * 3600
    again = await cards.handle(CallEnded("4.0", "1001", CUSTOMER, talk_seconds=30))
    assert again.status == "queued" and again.code == first.code


async def test_every_decision_is_recorded_with_its_reason(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    assert (await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=2))
            ).reason.startswith("talk time 2s below minimum")
    assert "internal" in (await cards.handle(CallEnded("2.0", "1001", "1002", 30))).reason
    assert "not an agent" in (await cards.handle(CallEnded("3.0", "4711", CUSTOMER, 30))).reason
    skipped = await cards.handle(SendRequested("1001", "", "4.0", reason="no recent call"))
    assert skipped.reason == "no recent call"
    rows = await store._all("SELECT linkedid, outcome, reason FROM decisions ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [("1.0", "skipped"), ("2.0", "skipped"),
                                             ("3.0", "skipped"), ("4.0", "skipped")]


async def test_permanent_rejection_fails_and_temporary_errors_retry(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    await drain(store, RecordingGateway([SubmitRejected(0x0B)]), clock)
    rows = await store._all("SELECT status, smpp_status FROM sms")
    assert [(r[0], r[1]) for r in rows] == [("failed", 0x0B)]

    await cards.handle(CallEnded("2.0", "1002", CUSTOMER, talk_seconds=30))
    gateway = RecordingGateway([ConnectionError("down"), ConnectionError("down")])
    await drain(store, gateway, clock)
    row = (await store._all("SELECT status, attempts, not_before FROM sms WHERE id = 2"))[0]
    assert (row[0], row[1]) == ("queued", 1) and row[2] == clock() + 30
    clock.now += 31
    await drain(store, gateway, clock)
    row = (await store._all("SELECT status, attempts, not_before FROM sms WHERE id = 2"))[0]
    assert (row[0], row[1]) == ("queued", 2) and row[2] == clock() + 60
    clock.now += 61
    await drain(store, gateway, clock)
    assert (await store._all("SELECT status FROM sms WHERE id = 2"))[0][0] == "submitted"


async def test_gives_up_after_max_attempts_and_expires_old_sms(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    await drain(store, RecordingGateway([OSError("x")]), clock, max_attempts=1)
    assert (await store._all("SELECT status, error FROM sms"))[0][0] == "failed"
    await cards.handle(CallEnded("2.0", "1002", CUSTOMER, talk_seconds=30))
    clock.now += 25 * 3600
    gateway = RecordingGateway()
    await drain(store, gateway, clock)
    assert gateway.submitted == []
    assert (await store._all("SELECT status FROM sms WHERE id = 2"))[0][0] == "expired"


async def test_sms_left_mid_submit_by_a_crash_is_resent(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    claimed = await store.claim_due_sms(clock(), 10)  # ... and the process dies here
    assert len(claimed.sms) == 1 and claimed.next_due_at is None
    if config.db.url:  # other daemons may be submitting: it waits for its lease to run out
        gateway = RecordingGateway()
        await drain(store, gateway, clock)
        assert gateway.submitted == []
        clock.now += config.db.lease + 1
    gateway = RecordingGateway()
    await drain(store, gateway, clock)
    assert len(gateway.submitted) == 1
    assert await store.sms_status_counts() == {"submitted": 1}


async def test_an_sms_whose_send_task_dies_of_a_bug_is_queued_again(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Not a database fault: a bug (here in recording the SMSC's refusal). The SMS is not left
    'submitting' (on PostgreSQL: leased, its lease renewed) until a restart."""
    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    mark_failed = store.mark_failed
    bugs = [RuntimeError("a bug")]

    async def buggy(*args, **kwargs):  # type: ignore[no-untyped-def]
        if bugs:
            raise bugs.pop()
        await mark_failed(*args, **kwargs)

    monkeypatch.setattr(store, "mark_failed", buggy)
    await drain(store, RecordingGateway([SubmitRejected(0x45)]), clock)
    [(status, attempts, error, not_before)] = await store._all(
        "SELECT status, attempts, error, not_before FROM sms")
    assert (status, attempts, not_before) == ("queued", 1, clock() + 30)
    assert "its send task failed: RuntimeError('a bug')" in error
    clock.now += 31  # taken again by the next claim, whatever daemon makes it
    gateway = RecordingGateway()
    await drain(store, gateway, clock)
    assert len(gateway.submitted) == 1 and await store.sms_status_counts() == {"submitted": 1}


async def test_a_bug_after_the_smsc_took_the_sms_never_sends_it_again(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The SMSC accepted it, then storing its message ids met a bug: queueing it again would
    text the customer twice. It stays 'submitting', as a stop leaves an SMS."""
    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))

    async def buggy(submitted):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(store, "mark_submitted_many", buggy)
    gateway = RecordingGateway()
    await drain(store, gateway, clock)
    assert len(gateway.submitted) == 1
    assert await store.sms_status_counts() == {"submitting": 1}
    assert await store._all("SELECT kind FROM sms_events WHERE kind = 'retry'") == []


async def test_newer_schema_is_refused(tmp_path: Path) -> None:

    from ccshortlink.store import StoreError

    path = tmp_path / "x.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer"):
        await Store.open(path)


async def test_receipts_match_hex_and_decimal_forms_of_the_id(env) -> None:  # type: ignore[no-untyped-def]
    config, store, cards, clock = env
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    [sms] = (await store.claim_due_sms(clock(), 10)).sms
    await store.mark_submitted(sms.id, ["1f4a", "1f4b"], clock())
    assert await store.record_receipt("8010", "ENROUTE", "000", clock()) == sms.id  # 0x1f4a
    assert await store.record_receipt("1F4B", "DELIVRD", "000", clock()) == sms.id
    assert await store.record_receipt("unknown", "DELIVRD", "000", clock()) is None
    assert await store.sms_status_counts() == {"delivered": 1}


async def test_an_sms_queued_while_every_slot_is_busy_goes_when_one_frees(env) -> None:  # type: ignore[no-untyped-def]
    """Not at the outbox's next tick (1 s): the slot freeing up claims it at once."""
    import asyncio
    import time

    from ccshortlink.app.outbox import Outbox
    from ccshortlink.ops.logs import get_logger

    config, store, cards, clock = env
    submitted_at: list[float] = []

    class SlowGateway(RecordingGateway):
        async def submit(self, destination, sms):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.2)
            submitted_at.append(time.monotonic())
            return await super().submit(destination, sms)

    outbox = Outbox(store=store, gateway=SlowGateway(), clock=clock, log=get_logger(),
                    max_attempts=3, concurrency=1)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    await cards.handle(CallEnded("1.0", "1001", CUSTOMER, talk_seconds=30))
    outbox.wake()
    await asyncio.sleep(0.05)  # the one slot is busy with the first SMS
    await cards.handle(CallEnded("2.0", "1001", "+8613900139000", talk_seconds=30))
    outbox.wake()
    for _ in range(150):
        if len(submitted_at) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert len(submitted_at) == 2
    assert submitted_at[1] - submitted_at[0] < 0.6  # 0.2 s to submit; the tick would be ~1 s
