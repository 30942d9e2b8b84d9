"""Card visits written in batches: none lost, none doubled, bots not even queued."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ccshortlink.app.visits import Visit, VisitBuffer
from ccshortlink.ops.logs import get_logger
from ccshortlink.store import Store
from ccshortlink.web.context import DEPS
from tests.support.cardkit import (
    CODE,
    IPHONE,
    START,
    Client,
    Clock,
    Site,
    issue,
    page,
)
from tests.support.pgkit import peek_db


def stored_visits(path: object, kind: str = "open") -> int:
    with peek_db(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM visits WHERE kind = ?", (kind,)).fetchone()[0])


async def until_stored(path: object, count: int, kind: str = "open") -> None:
    """Wait (up to 10 s) for the writer task to store `count` visits of `kind`."""
    for _ in range(200):
        if stored_visits(path, kind) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{stored_visits(path, kind)} {kind} visits stored, expected {count}")


# --- visits in batches -------------------------------------------------------------------

async def test_visits_reach_the_database_without_anyone_flushing(site: Site,
                                                                 client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    await page(client, f"/{CODE}")
    await until_stored(site.store, 1)
    await page(client, f"/{CODE}/vcard")
    await until_stored(site.store, 1, "vcard")
    assert site.app[DEPS].visits.pending == 0


async def test_many_opens_are_each_stored_once(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    responses = await asyncio.gather(*(page(client, f"/{CODE}") for _ in range(60)))
    assert [r.status for r, _ in responses] == [200] * 60
    await site.app[DEPS].visits.flush()
    await site.app[DEPS].visits.flush()  # nothing left to write twice
    assert stored_visits(site.store) == 60
    metrics = await (await client.get("/metrics")).text()
    assert 'ccshortlink_visits_total{kind="open"} 60.0' in metrics.splitlines()


async def test_visits_still_pending_are_written_when_the_app_stops(site: Site) -> None:
    await issue(site.store, site.clock, CODE)
    site.app[DEPS].visits.interval = 3600.0  # after the first write, the next waits an hour
    async with TestClient(TestServer(site.app)) as client:
        await page(client, f"/{CODE}")
        await until_stored(site.store, 1)
        await page(client, f"/{CODE}")
        await page(client, f"/{CODE}")
        assert site.app[DEPS].visits.pending == 2
        assert stored_visits(site.store) == 1
    # the client closed the server: AppRunner.cleanup() ran the app's cleanup
    assert stored_visits(site.store) == 3


async def test_head_bots_and_prefetches_are_not_even_queued(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    site.app[DEPS].visits.interval = 3600.0
    assert (await client.head(f"/{CODE}", headers={"User-Agent": IPHONE})).status == 200
    for bot in ("WhatsApp/2.23.20.0", "facebookexternalhit/1.1", "Slackbot 1.0", ""):
        response, _ = await page(client, f"/{CODE}", **{"User-Agent": bot})
        assert response.status == 200
    await page(client, f"/{CODE}", **{"Sec-Purpose": "prefetch;prerender"})
    assert site.app[DEPS].visits.pending == 0
    await site.app[DEPS].visits.flush()
    assert stored_visits(site.store) == 0


async def test_store_writes_a_batch_in_one_go(store: Store) -> None:
    clock = Clock()
    await issue(store, clock, CODE)
    odd_browser = "Mozilla/5.0 \udcff\udcfe 测试" + "x" * 300  # undecodable header bytes
    written = await store.record_visits([
        (CODE, "open", "203.0.113.0", "Mozilla/5.0", START),
        ("NoSuchCode", "open", "203.0.113.0", "Mozilla/5.0", START),  # gone: skipped
        (CODE, "call", "2001:db8:1::", odd_browser, START + 1.5),
    ])
    assert written == 2
    with peek_db(store) as db:
        rows = db.execute("SELECT kind, client, user_agent, at FROM visits ORDER BY id").fetchall()
    assert rows[0] == ("open", "203.0.113.0", "Mozilla/5.0", START)
    assert rows[1][:2] == ("call", "2001:db8:1::") and rows[1][3] == START + 1.5
    assert rows[1][2].startswith("Mozilla/5.0 ?? 测试x") and len(rows[1][2]) == 200
    assert await store.record_visits([]) == 0
    # a backlog larger than one statement takes
    many = [(CODE, "open", "203.0.113.0", f"Browser/{n}", START + n) for n in range(2345)]
    assert await store.record_visits(many) == 2345
    with peek_db(store) as db:
        stored = [r[0] for r in db.execute("SELECT user_agent FROM visits ORDER BY id")][2:]
    assert stored == [f"Browser/{n}" for n in range(2345)]


class RecordingStore:
    """Records each batch; a write can be held open to see what gathers meanwhile."""

    is_transient = staticmethod(Store.is_transient)  # the real store's retry rule

    def __init__(self) -> None:
        self.batches: list[list[Visit]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.failures: list[BaseException] = []

    async def record_visits(self, visits: list[Visit]) -> int:
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(list(visits))
        await self.release.wait()
        return len(visits)


def visit(n: int) -> tuple[str, str, str, str, float]:
    return (f"code{n}", "open", "198.51.100.0", IPHONE, START + n)


async def until(condition: object, what: str) -> None:
    for _ in range(1000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_quiet_server_writes_at_once_a_busy_one_in_batches() -> None:
    store = RecordingStore()
    buffer = VisitBuffer(store, get_logger(), interval=0.05)  # type: ignore[arg-type]
    buffer.start()
    try:
        store.release.clear()
        buffer.add(*visit(0))
        await until(lambda: len(store.batches) == 1, "the first write")
        for n in range(1, 101):  # while the first write is still on its way
            buffer.add(*visit(n))
        store.release.set()
        await until(lambda: buffer.pending == 0 and len(store.batches) == 2, "the second write")
    finally:
        await buffer.stop()
    assert [len(b) for b in store.batches] == [1, 100]
    assert [v[0] for b in store.batches for v in b] == [f"code{n}" for n in range(101)]


async def test_a_full_batch_does_not_wait_for_the_interval() -> None:
    store = RecordingStore()
    buffer = VisitBuffer(store, get_logger(), interval=3600.0, max_rows=10)  # type: ignore[arg-type]
    buffer.start()
    try:
        buffer.add(*visit(0))
        await until(lambda: len(store.batches) == 1, "the first write")
        for n in range(1, 10):
            buffer.add(*visit(n))
        await asyncio.sleep(0.05)
        assert len(store.batches) == 1  # 9 waiting: the hour-long interval holds them
        buffer.add(*visit(10))
        await until(lambda: len(store.batches) == 2, "the full batch")
    finally:
        await buffer.stop()
    assert len(store.batches[1]) == 10


async def test_a_busy_database_gets_the_batch_again_a_closed_one_does_not() -> None:
    store = RecordingStore()
    buffer = VisitBuffer(store, get_logger(), max_pending=3)  # type: ignore[arg-type]
    store.failures.append(sqlite3.OperationalError("database is locked"))
    for n in range(4):
        buffer.add(*visit(n))  # the fourth finds the buffer full
    with pytest.raises(sqlite3.OperationalError):
        await buffer.flush()
    assert buffer.pending == 3
    assert await buffer.flush() == 3
    assert [v[0] for v in store.batches[0]] == ["code0", "code1", "code2"]
    # a store that cannot take the batch at all (closed) would refuse it forever: dropped
    buffer.add(*visit(5))
    store.failures.append(ValueError("Connection closed"))
    with pytest.raises(ValueError):
        await buffer.flush()
    assert buffer.pending == 0 and len(store.batches) == 1
