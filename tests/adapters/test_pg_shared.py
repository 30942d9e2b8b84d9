"""Two stores on one PostgreSQL database, as two daemons have: what the database decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from ccshortlink.app.sending import CardService
from ccshortlink.config.agents import load_agents
from ccshortlink.config.settings import Config, load_config
from ccshortlink.core.calls import CallEnded
from ccshortlink.core.links import SmsTemplates
from ccshortlink.core.records import SubmittedSms
from ccshortlink.ops.logs import get_logger
from ccshortlink.store.choose import AnyStore, open_store
from ccshortlink.store.rows import DECIDED_ELSEWHERE
from tests.support.configfile import write_config
from tests.support.outboxkit import Clock

NUMBERS = [f"+8613800{n:06d}" for n in range(12)]


@pytest.fixture
async def two(tmp_path: Path, pg_url: str) -> AsyncIterator[
        tuple[Config, list[AnyStore], list[CardService], Clock]]:
    config = load_config(write_config(tmp_path, database={"url": pg_url, "lease": 5}))
    agents = load_agents(config.agents_file)
    templates = SmsTemplates(config.sms.templates, config.sms.default_language)
    clock = Clock()
    stores = [await open_store(config.db) for _ in range(2)]
    cards = [CardService(store=s, config=config, agents=lambda: agents,
                         templates=lambda: templates, clock=clock, log=get_logger())
             for s in stores]
    yield config, stores, cards, clock
    for store in stores:
        await store.close()


async def test_the_same_calls_decided_at_once_by_two_daemons_give_one_sms_each(two) -> None:  # type: ignore[no-untyped-def]
    config, stores, cards, clock = two
    calls = [CallEnded(f"1790000000.{n}", "1001", number, talk_seconds=30)
             for n, number in enumerate(NUMBERS)]
    first, second = await asyncio.gather(cards[0].handle_many(calls),
                                         cards[1].handle_many(list(reversed(calls))))
    errors = [o for o in [*first, *second] if isinstance(o, Exception)]
    assert errors == []
    outcomes = [o for o in [*first, *second] if not isinstance(o, Exception)]
    assert len(outcomes) == 2 * len(NUMBERS)
    queued = [o for o in outcomes if o.status == "queued"]
    elsewhere = [o for o in outcomes if o.reason == DECIDED_ELSEWHERE]
    assert len(queued) == len(elsewhere) == len(NUMBERS)
    assert await stores[0].sms_status_counts() == {"queued": len(NUMBERS)}
    rows = await stores[1]._all("SELECT COUNT(*), COUNT(DISTINCT linkedid) FROM decisions")
    assert tuple(rows[0]) == (len(NUMBERS), len(NUMBERS))


async def test_claims_skip_each_others_sms_until_a_lease_runs_out(two) -> None:  # type: ignore[no-untyped-def]
    config, stores, cards, clock = two
    for n, number in enumerate(NUMBERS[:4]):
        await cards[0].handle(CallEnded(f"2.{n}", "1001", number, talk_seconds=30))
    a, b = await asyncio.gather(stores[0].claim_due_sms(clock(), 3),
                                stores[1].claim_due_sms(clock(), 3))
    ids_a, ids_b = {s.id for s in a.sms}, {s.id for s in b.sms}
    assert len(ids_a | ids_b) == 4 and not ids_a & ids_b  # none claimed twice
    # A answers for its own; B dies with its claims: A takes them once B's lease is over
    await stores[0].mark_submitted_many([SubmittedSms(i, (f"mid-{i}",), clock())
                                         for i in ids_a])
    assert (await stores[0].claim_due_sms(clock() + 4, 10)).sms == []
    later = await stores[0].claim_due_sms(clock() + config.db.lease + 1, 10)
    assert {s.id for s in later.sms} == ids_b and all(s.attempts == 2 for s in later.sms)


async def test_a_receipt_reaching_the_other_daemon_finds_its_sms(two) -> None:  # type: ignore[no-untyped-def]
    config, stores, cards, clock = two
    outcome = await cards[0].handle(CallEnded("3.0", "1001", NUMBERS[0], talk_seconds=30))
    [sms] = (await stores[0].claim_due_sms(clock(), 10)).sms
    await stores[0].mark_submitted(sms.id, ["ab12"], clock())
    assert await stores[1].record_receipt("0xAB12".removeprefix("0x"), "DELIVRD", "000",
                                          clock()) == outcome.sms_id
    assert await stores[0].sms_status_counts() == {"delivered": 1}


async def test_an_item_the_server_refuses_fails_alone_in_its_batch(two) -> None:  # type: ignore[no-untyped-def]
    """A batch's statements are sent without waiting for each answer; an error the server
    raises for one item (a time out of float range here) is still that item's alone."""
    from ccshortlink.core.records import ReceiptRecord

    config, stores, cards, clock = two
    await cards[0].handle(CallEnded("4.0", "1001", NUMBERS[0], talk_seconds=30))
    [sms] = (await stores[0].claim_due_sms(clock(), 10)).sms
    await stores[0].mark_submitted(sms.id, ["5a"], clock())
    results = await stores[0].record_receipts([
        ReceiptRecord("5a", "ACCEPTD", "000", clock()),
        ReceiptRecord("5a", "ENROUTE", "000", 10 ** 400),  # type: ignore[arg-type]
        ReceiptRecord("5a", "DELIVRD", "000", clock())])
    assert results[0] == results[2] == sms.id
    assert isinstance(results[1], Exception) and "out of range" in str(results[1])
    events = await stores[1]._all("SELECT detail FROM sms_events WHERE kind = 'receipt'"
                                  " ORDER BY id")
    assert [e[0].split()[1] for e in events] == ["ACCEPTD", "DELIVRD"]
    assert await stores[1].sms_status_counts() == {"delivered": 1}


async def test_an_opt_out_waits_for_a_decision_on_that_number(two, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    """A card decided on another connection holds the number's lock till it commits: the
    opt-out waits for it, so it sees that card's SMS and cancels it (no card to a number that
    has just said STOP)."""
    _, stores, _, _ = two
    number = NUMBERS[0]
    with psycopg.connect(pg_url, autocommit=True) as deciding:
        deciding.execute("BEGIN")
        # What store.rows.lock_customer takes in a decision's transaction.
        deciding.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (number,))
        opting_out = asyncio.ensure_future(stores[1].set_opt_out(number, True, "sms", 1.0))
        await asyncio.sleep(1.0)
        assert not opting_out.done(), "the opt-out did not wait for the decision in flight"
        deciding.execute("COMMIT")
        assert await asyncio.wait_for(opting_out, 10) is True


async def test_a_call_one_daemon_cannot_make_a_card_for_is_left_to_the_other(two) -> None:  # type: ignore[no-untyped-def]
    """A template that fails on one daemon (a reload half done, say) fails that call alone
    there, in a batch decided all at once, and leaves its key: the other daemon sends it."""
    config, stores, cards, clock = two

    class Broken:
        def render(self, *args: object) -> str:
            raise ValueError("template error on this daemon")

    agents = load_agents(config.agents_file)
    broken = CardService(store=stores[0], config=config, agents=lambda: agents,
                         templates=lambda: Broken(),  # type: ignore[arg-type,return-value]
                         clock=clock, log=get_logger())
    calls = [CallEnded(f"6.{n}", "1001", number, talk_seconds=30)
             for n, number in enumerate(NUMBERS[:3])]
    results = await broken.handle_many(calls)
    assert all(isinstance(r, ValueError) for r in results)
    assert (await stores[1]._all("SELECT COUNT(*) FROM call_claims"))[0][0] == 0
    again = await cards[1].handle_many(calls)
    assert [getattr(o, "status", o) for o in again] == ["queued"] * 3
    assert await stores[1].sms_status_counts() == {"queued": 3}


async def test_an_sms_whose_claim_went_unanswered_is_taken_over_not_held_till_restart(
        tmp_path: Path, pg_url: str) -> None:
    """A claim the server carried out but whose answer never came back (the connection broke)
    leaves SMS marked as this daemon's; it renews the leases of the SMS it knows it holds, not
    of those, so once their lease runs out another daemon sends them."""
    import time

    config = load_config(write_config(tmp_path, database={"url": pg_url, "lease": 1}))
    agents = load_agents(config.agents_file)
    templates = SmsTemplates(config.sms.templates, config.sms.default_language)
    clock = Clock(time.time())
    a, b = [await open_store(config.db) for _ in range(2)]
    try:
        cards = CardService(store=a, config=config, agents=lambda: agents,
                            templates=lambda: templates, clock=clock, log=get_logger())
        for n, number in enumerate(NUMBERS[:2]):
            await cards.handle(CallEnded(f"7.{n}", "1001", number, talk_seconds=30))
        [held] = (await a.claim_due_sms(time.time(), 1)).sms
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as raw:
            lost = await (await raw.execute(
                "UPDATE sms SET status = 'submitting', lease_owner = %s, lease_until = %s"
                " WHERE status = 'queued' RETURNING id",
                (a._owner, time.time() + 1))).fetchone()  # type: ignore[union-attr]
        assert lost is not None
        await asyncio.sleep(2.5)  # the lease is 1 s, renewed every third of it
        taken = await b.claim_due_sms(time.time(), 10)
        assert [s.id for s in taken.sms] == [lost[0]] and held.id != lost[0]
    finally:
        for store in (a, b):
            await store.close()
