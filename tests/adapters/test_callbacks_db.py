"""Call-backs in the database, on SQLite and PostgreSQL alike: the limits decided in the
request's transaction, one placed at a time per agent, each step, expiry and a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ccshortlink.core.callbacks import Refusal
from ccshortlink.core.policy import PolicyConfig
from ccshortlink.core.vocab import CallbackState
from ccshortlink.store.choose import AnyStore
from tests.support.pgkit import open_backend, peek_db, reports_for

NUMBER = "+8613800138000"
NOW = 1_700_000_000.0


async def add_link(store: AnyStore, code: str, agent: str = "CS1001", number: str = NUMBER,
                   *, pbx: str = "site-a", created: float = NOW - 60,
                   revoked: float | None = None) -> None:
    await store._write(lambda db: db.execute(
        "INSERT INTO links (code, agent_id, customer_number, created_at, expires_at, revoked_at,"
        " pbx) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (code, agent, number, created, NOW + 7 * 86400, revoked, pbx)))


def open_hours(agent_id: str, pbx: str) -> tuple[str, Refusal | None]:
    return pbx or "default", None


async def request(store: AnyStore, code: str, at: float = NOW, judge: Any = open_hours,
                  limit: int = 3) -> Any:
    return await store.request_callback(code, at, per_link_per_day=limit, judge=judge)


@pytest.fixture
async def store(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    async with await open_backend(backend, request, tmp_path / "db.sqlite") as opened:
        await add_link(opened, "aaaa1111")
        yield opened


async def test_a_request_waits_and_a_second_tap_returns_the_same_one(store: AnyStore) -> None:
    first = await request(store, "aaaa1111")
    assert (first.state, first.agent_id, first.pbx, first.created) == (
        CallbackState.WAITING, "CS1001", "site-a", True)
    assert first.customer_number == NUMBER
    again = await request(store, "aaaa1111", NOW + 5)
    assert (again.id, again.created) == (first.id, False)
    assert await request(store, "nosuchcode") is None
    latest = await store.latest_callback("aaaa1111")
    assert latest is not None and latest.id == first.id


async def test_two_taps_at_once_make_one_call_back(store: AnyStore) -> None:
    results = await asyncio.gather(*(request(store, "aaaa1111") for _ in range(6)))
    assert len({r.id for r in results}) == 1
    assert sum(r.created for r in results) == 1


async def test_refusals_are_recorded_with_why(store: AnyStore) -> None:
    def closed(agent_id: str, pbx: str) -> tuple[str, Refusal | None]:
        return pbx, Refusal("outside_hours", NOW + 3600)

    refused = await request(store, "aaaa1111", judge=closed)
    assert (refused.state, refused.reason, refused.opens_at) == (
        CallbackState.REFUSED, "outside_hours", NOW + 3600)
    await add_link(store, "revoked1", revoked=NOW - 1)
    assert await request(store, "revoked1") is None
    await store.set_opt_out(NUMBER, True, "sms", NOW)
    opted = await request(store, "aaaa1111")
    assert (opted.state, opted.reason) == (CallbackState.REFUSED, "opted_out")
    assert await store.preferred_agent_of(NUMBER, NOW) is None


async def test_the_per_link_limit_counts_a_day(store: AnyStore) -> None:
    for n in range(2):
        made = await request(store, "aaaa1111", NOW + n, limit=2)
        assert await store.record_callback_step(made.id, CallbackState.AGENT_MISSED, NOW + n,
                                                reason="no_answer")
    third = await request(store, "aaaa1111", NOW + 10, limit=2)
    assert (third.state, third.reason) == (CallbackState.REFUSED, "link_limit")
    tomorrow = await request(store, "aaaa1111", NOW + 86400 + 2, limit=2)
    assert tomorrow.state == CallbackState.WAITING


async def test_one_call_back_in_flight_per_agent_placed_once(store: AnyStore) -> None:
    await add_link(store, "bbbb2222", number="+8613800138001")
    await add_link(store, "cccc3333", agent="CS1002", number="+8613800138002")
    a, b, c = [await request(store, code, NOW + i)
               for i, code in enumerate(["aaaa1111", "bbbb2222", "cccc3333"])]
    queue = await store.callback_queue()
    assert [r.id for r in queue.waiting] == [a.id, b.id, c.id] and queue.agents_in_flight == set()
    claims = await asyncio.gather(*(store.claim_callback(a.id, NOW, owner=f"d{i}",
                                                         lease_until=NOW + 60) for i in range(3)))
    assert sorted(bool(c) for c in claims) == [False, False, True]
    assert not await store.claim_callback(b.id, NOW, owner="d0", lease_until=NOW + 60)  # same agent
    assert await store.claim_callback(c.id, NOW, owner="d0", lease_until=NOW + 60)
    assert (await store.callback_queue()).agents_in_flight == {"CS1001", "CS1002"}
    for state in (CallbackState.CALLING_CUSTOMER, CallbackState.CONNECTED):
        assert await store.record_callback_step(a.id, state, NOW + 5)
    assert await store.record_callback_step(a.id, CallbackState.DONE, NOW + 50, talk_seconds=44)
    # nothing changes once ended
    assert not await store.record_callback_step(a.id, CallbackState.FAILED, NOW + 52)
    done = await store.latest_callback("aaaa1111")
    assert done is not None and (done.state, done.talk_seconds) == (CallbackState.DONE, 44)
    assert await store.claim_callback(b.id, NOW + 60, owner="d1", lease_until=NOW + 120)
    with peek_db(store) as db:
        row = db.execute("SELECT placed_at, agent_answered_at, customer_answered_at, ended_at"
                         " FROM callbacks WHERE id = ?", (a.id,)).fetchone()
        assert tuple(row) == (NOW, NOW + 5, NOW + 5, NOW + 50)


async def test_expiry_and_in_flight_closed_at_a_restart(store: AnyStore) -> None:
    await add_link(store, "bbbb2222", number="+8613800138001", agent="CS1002")
    waiting = await request(store, "aaaa1111")
    flying = await request(store, "bbbb2222")
    assert await store.claim_callback(flying.id, NOW, owner="me", lease_until=NOW + 60)
    assert await store.expire_callbacks(NOW + 29 * 60, 30) == []
    [expired] = await store.expire_callbacks(NOW + 30 * 60, 30)
    assert expired.id == waiting.id
    latest = await store.latest_callback("aaaa1111")
    assert latest is not None and (latest.state, latest.reason) == (CallbackState.EXPIRED,
                                                                    "max_wait")
    await store.renew_callback_leases("me", NOW + 600)
    assert await store.close_abandoned_callbacks(NOW + 300, starting=False) == []
    assert await store.close_abandoned_callbacks(NOW + 700, starting=False) == [flying.id]
    closed = await store.latest_callback("bbbb2222")
    assert closed is not None and (closed.state, closed.reason) == (CallbackState.FAILED,
                                                                    "daemon_restart")


async def test_two_daemons_expiring_at_once_report_each_expiry_once(
        store: AnyStore, backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    for n in range(8):
        await add_link(store, f"exp{n:05d}", agent=f"CS{n}", number=f"+86138001390{n:02d}")
        await store.request_callback(f"exp{n:05d}", NOW, per_link_per_day=3, judge=open_hours)
    async with await open_backend(backend, request, tmp_path / "db.sqlite") as other:
        both = await asyncio.gather(*(s.expire_callbacks(NOW + 3600, 30)
                                      for s in [store, other] * 3))
    reported = [r.id for records in both for r in records]
    assert len(reported) == 8 and len(set(reported)) == 8


async def test_the_preferred_agent_is_the_latest_live_links(store: AnyStore) -> None:
    assert await store.preferred_agent_of(NUMBER, NOW) == ("CS1001", "site-a")
    await add_link(store, "newer111", agent="CS1002", pbx="", created=NOW - 10)
    assert await store.preferred_agent_of(NUMBER, NOW) == ("CS1002", "")
    assert await store.preferred_agent_of("+8613900000000", NOW) is None


async def test_trace_and_stats_read_them_on_either_database(store: AnyStore) -> None:
    refused = await request(store, "aaaa1111", judge=lambda agent_id, pbx: (
        pbx, Refusal("outside_hours", NOW + 3600)))
    made = await request(store, "aaaa1111", NOW + 1)
    assert await store.claim_callback(made.id, NOW + 2, owner="d", lease_until=NOW + 60)
    for at, state in [(3, CallbackState.CALLING_CUSTOMER), (4, CallbackState.CONNECTED)]:
        await store.record_callback_step(made.id, state, NOW + at)
    await store.record_callback_step(made.id, CallbackState.DONE, NOW + 50, talk_seconds=46)
    with reports_for(store) as reports:
        trace = reports.trace(NUMBER, PolicyConfig(), NOW + 60)
        assert trace is not None
        steps = [(e.at - NOW, e.kind) for e in trace.events if e.kind.startswith("callback_")]
        assert steps == [(0, "callback_refused"), (1, "callback_requested"),
                         (2, "callback_placed"), (3, "callback_agent_answered"),
                         (4, "callback_connected"), (50, "callback_ended")]
        [ended] = [e for e in trace.events if e.kind == "callback_ended"]
        assert (ended.facts["outcome"], ended.facts["talk_seconds"]) == ("done", 46)
        [told] = [e for e in trace.events if e.kind == "callback_refused"]
        assert (told.facts["reason"], told.facts["callback_id"]) == ("outside_hours", refused.id)
        figures = reports.stats(NOW - 10)
        assert figures["CS1001"].callbacks_connected == 1


async def test_placing_rechecks_the_link_and_the_number(store: AnyStore) -> None:
    await add_link(store, "bbbb2222", number="+8613800138001")
    await add_link(store, "cccc3333", number="+8613800138002")
    opted, revoked, expired = [await request(store, code, NOW + i) for i, code in
                               enumerate(["aaaa1111", "bbbb2222", "cccc3333"])]
    await store.set_opt_out(NUMBER, True, "sms", NOW + 10)
    assert await store.revoke_link("bbbb2222", NOW + 10)
    for made, reason in [(opted, "opted_out"), (revoked, "link_not_live")]:
        claim = await store.claim_callback(made.id, NOW + 20, owner="d", lease_until=NOW + 80)
        assert not claim and claim.refusal is not None and claim.refusal.reason == reason
    later = NOW + 7 * 86400 + 1  # the link's last day is over
    claim = await store.claim_callback(expired.id, later, owner="d", lease_until=later + 60)
    assert not claim and claim.refusal is not None and claim.refusal.reason == "link_not_live"
    for code, reason in [("aaaa1111", "opted_out"), ("bbbb2222", "link_not_live"),
                         ("cccc3333", "link_not_live")]:
        ended = await store.latest_callback(code)
        assert ended is not None and (ended.state, ended.reason) == (CallbackState.REFUSED,
                                                                     reason)
    assert (await store.callback_queue()).waiting == []
    await add_link(store, "dddd4444", number="+8613800138003")
    closed = await request(store, "dddd4444", NOW + 30)
    assert await store.refuse_callback(closed.id, NOW + 40, Refusal("outside_hours", NOW + 900))
    assert not await store.refuse_callback(closed.id, NOW + 41, Refusal("outside_hours"))
    ended = await store.latest_callback("dddd4444")
    assert ended is not None and (ended.state, ended.reason, ended.opens_at) == (
        CallbackState.REFUSED, "outside_hours", NOW + 900)


async def test_a_busy_agent_puts_it_back_only_within_the_wait(store: AnyStore) -> None:
    made = await request(store, "aaaa1111")
    assert await store.claim_callback(made.id, NOW + 5, owner="d", lease_until=NOW + 65)
    assert await store.requeue_callback(made.id, NOW + 10, reason="busy", not_before=NOW + 40,
                                        max_wait_minutes=30)
    [waiting] = (await store.callback_queue()).waiting
    assert (waiting.state, waiting.reason, waiting.opens_at) == (CallbackState.WAITING, "busy",
                                                                 NOW + 40)
    assert (await store.callback_queue()).agents_in_flight == set()
    assert await store.claim_callback(made.id, NOW + 40, owner="d", lease_until=NOW + 100)
    assert not await store.requeue_callback(made.id, NOW + 30 * 60, reason="busy",
                                            not_before=NOW + 31 * 60, max_wait_minutes=30)
    assert (await store.latest_callback("aaaa1111")).state == CallbackState.CALLING_AGENT  # type: ignore[union-attr]


async def test_called_back_counts_the_customer_answering_however_it_ended(
        store: AnyStore) -> None:
    made = await request(store, "aaaa1111")
    assert await store.claim_callback(made.id, NOW + 2, owner="d", lease_until=NOW + 60)
    for at, state in [(3, CallbackState.CALLING_CUSTOMER), (4, CallbackState.CONNECTED)]:
        await store.record_callback_step(made.id, state, NOW + at)
    assert await store.close_abandoned_callbacks(NOW + 120, starting=True) == [made.id]
    with reports_for(store) as reports:  # the customer did answer before the restart
        assert reports.stats(NOW - 10)["CS1001"].callbacks_connected == 1
