"""The card's fast path: visits written in batches, links and pages reused, and still right."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ccshortlink.app.linkcache import LinkCache
from ccshortlink.app.visits import Visit, VisitBuffer
from ccshortlink.config.agents import load_agents
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.records import LinkView
from ccshortlink.ops.logs import get_logger
from ccshortlink.store import Store
from ccshortlink.web.context import DEPS
from tests.support.cardkit import (
    CODE,
    DAY,
    IPHONE,
    START,
    Client,
    Clock,
    Site,
    issue,
)


def stored_visits(path: Path, kind: str = "open") -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM visits WHERE kind = ?", (kind,)).fetchone()[0])


async def until_stored(path: Path, count: int, kind: str = "open") -> None:
    """Wait (up to 10 s) for the writer task to store `count` visits of `kind`."""
    for _ in range(200):
        if stored_visits(path, kind) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{stored_visits(path, kind)} {kind} visits stored, expected {count}")


async def page(client: Client, path: str, **headers: str) -> tuple[ClientResponse, str]:
    response = await client.get(path, headers={"User-Agent": IPHONE, **headers},
                                allow_redirects=False)
    return response, await response.text()


# --- visits in batches -------------------------------------------------------------------

async def test_visits_reach_the_database_without_anyone_flushing(site: Site,
                                                                 client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    await page(client, f"/{CODE}")
    await until_stored(site.store.path, 1)
    await page(client, f"/{CODE}/vcard")
    await until_stored(site.store.path, 1, "vcard")
    assert site.app[DEPS].visits.pending == 0


async def test_many_opens_are_each_stored_once(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    responses = await asyncio.gather(*(page(client, f"/{CODE}") for _ in range(60)))
    assert [r.status for r, _ in responses] == [200] * 60
    await site.app[DEPS].visits.flush()
    await site.app[DEPS].visits.flush()  # nothing left to write twice
    assert stored_visits(site.store.path) == 60
    metrics = await (await client.get("/metrics")).text()
    assert 'ccshortlink_visits_total{kind="open"} 60.0' in metrics.splitlines()


async def test_visits_still_pending_are_written_when_the_app_stops(site: Site) -> None:
    await issue(site.store, site.clock, CODE)
    site.app[DEPS].visits.interval = 3600.0  # after the first write, the next waits an hour
    async with TestClient(TestServer(site.app)) as client:
        await page(client, f"/{CODE}")
        await until_stored(site.store.path, 1)
        await page(client, f"/{CODE}")
        await page(client, f"/{CODE}")
        assert site.app[DEPS].visits.pending == 2
        assert stored_visits(site.store.path) == 1
    # the client closed the server: AppRunner.cleanup() ran the app's cleanup
    assert stored_visits(site.store.path) == 3


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
    assert stored_visits(site.store.path) == 0


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
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT kind, client, user_agent, at FROM visits ORDER BY id").fetchall()
    assert rows[0] == ("open", "203.0.113.0", "Mozilla/5.0", START)
    assert rows[1][:2] == ("call", "2001:db8:1::") and rows[1][3] == START + 1.5
    assert rows[1][2].startswith("Mozilla/5.0 ?? 测试x") and len(rows[1][2]) == 200
    assert await store.record_visits([]) == 0
    # a backlog larger than one statement takes
    many = [(CODE, "open", "203.0.113.0", f"Browser/{n}", START + n) for n in range(2345)]
    assert await store.record_visits(many) == 2345
    with sqlite3.connect(store.path) as db:
        stored = [r[0] for r in db.execute("SELECT user_agent FROM visits ORDER BY id")][2:]
    assert stored == [f"Browser/{n}" for n in range(2345)]


class RecordingStore:
    """Records each batch; a write can be held open to see what gathers meanwhile."""

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


# --- links and pages reused --------------------------------------------------------------

async def test_a_rating_shows_at_once_on_this_and_other_links_of_the_agent(
        site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")  # static 5.0 over 3 votes
    other = await issue(site.store, site.clock, "OtherLnk23", agent_id="CS2002",
                        customer_number="+8613900139000", linkedid="2.1")
    for code in (CODE, other):  # both cached now
        _, body = await page(client, f"/{code}")
        assert "5.0" in body and "3 ratings" in body
    response = await client.post(f"/{CODE}/rate", data={"stars": "1"},
                                 headers={"User-Agent": IPHONE}, allow_redirects=False)
    assert response.status == 303
    _, body = await page(client, f"/{CODE}")
    assert 'value="1" id="s1" checked' in body and "4 ratings" in body
    _, body = await page(client, f"/{other}")
    assert "4.0" in body and "4 ratings" in body and " checked" not in body


async def test_expiry_is_exact_even_for_a_cached_link(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE, ttl=3.0)
    response, _ = await page(client, f"/{CODE}")
    assert response.status == 200
    site.clock.advance(2.999)
    response, _ = await page(client, f"/{CODE}")
    assert response.status == 200
    site.clock.advance(0.001)  # now == expires_at
    response, body = await page(client, f"/{CODE}")
    assert response.status == 410 and "这个链接已过期" in body


async def test_a_link_extended_meanwhile_is_read_again_not_expired(site: Site,
                                                                   client: Client) -> None:
    await issue(site.store, site.clock, CODE, ttl=3.0)
    await page(client, f"/{CODE}")
    # the same customer calls the same agent again: the daemon reuses and extends the link
    assert await issue(site.store, site.clock, "Unused2345", ttl=30 * DAY) == CODE
    site.clock.advance(3.5)
    response, _ = await page(client, f"/{CODE}")
    assert response.status == 200


async def test_an_agents_reload_shows_at_once(site: Site, client: Client,
                                              tmp_path: Path) -> None:
    await issue(site.store, site.clock, CODE)
    _, body = await page(client, f"/{CODE}")
    assert "王芳" in body
    path = tmp_path / "agents.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("王芳", "王芳芳"), encoding="utf-8")
    site.directory[0] = load_agents(path)  # what SIGHUP does
    _, body = await page(client, f"/{CODE}")
    assert "王芳芳" in body
    response, _ = await page(client, f"/{CODE}/call")
    assert response.headers["Location"] == "tel:+862088880000,,1001"


async def test_a_revocation_elsewhere_shows_within_seconds(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    await page(client, f"/{CODE}")
    await site.store.revoke_link(CODE, site.clock())  # e.g. by an operator's tool
    site.clock.advance(site.app[DEPS].links.ttl)
    response, _ = await page(client, f"/{CODE}")
    assert response.status == 410


async def test_each_language_gets_its_own_page(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    for _ in range(2):
        _, body = await page(client, f"/{CODE}", **{"Accept-Language": "en-GB,en;q=0.9"})
        assert '<html lang="en">' in body and "Call back" in body
        _, body = await page(client, f"/{CODE}", **{"Accept-Language": "zh-CN,zh;q=0.9"})
        assert '<html lang="zh-CN">' in body and "一键回拨" in body
        _, body = await page(client, f"/{CODE}")
        assert '<html lang="zh-CN">' in body


class LinkStore:
    """Answers link_for_page from a dict, counting reads; a read can be held open."""

    def __init__(self, links: dict[str, LinkView]) -> None:
        self.links = links
        self.reads = 0
        self.release = asyncio.Event()
        self.release.set()

    async def link_for_page(self, code: str, now: float) -> LinkView | None:
        self.reads += 1
        link = self.links.get(code)  # what the database held when the read began
        await self.release.wait()
        return link


def link_view(code: str, rating: int | None = None) -> LinkView:
    return LinkView(code=code, agent_id="CS1001", status="live", created_at=START,
                    expires_at=START + DAY, customer_region="CN", rating=rating, comment="")


async def test_link_cache_reads_once_for_many_and_stays_bounded() -> None:
    clock, directory = Clock(), AgentDirectory([])
    store = LinkStore({f"c{n}": link_view(f"c{n}") for n in range(5)})
    cache = LinkCache(store, lambda: directory, clock, ttl=5.0,  # type: ignore[arg-type]
                      max_links=3)
    store.release.clear()
    lookups = [asyncio.ensure_future(cache.lookup("c0")) for _ in range(50)]
    await asyncio.sleep(0)
    store.release.set()
    assert {(await f).link.code for f in lookups} == {"c0"}  # type: ignore[union-attr]
    assert store.reads == 1
    await cache.lookup("c0")
    assert store.reads == 1
    for n in range(1, 5):
        await cache.lookup(f"c{n}")
    assert len(cache) == 3
    assert await cache.lookup("missing") is None and len(cache) == 3


async def test_link_cache_drops_a_read_that_a_rating_overtook() -> None:
    clock, directory = Clock(), AgentDirectory([])
    store = LinkStore({"c0": link_view("c0")})
    cache = LinkCache(store, lambda: directory, clock)  # type: ignore[arg-type]
    store.release.clear()
    stale = asyncio.ensure_future(cache.lookup("c0"))
    while store.reads == 0:  # noqa: ASYNC110 (one loop turn at a time: the read must start, not end)
        await asyncio.sleep(0)
    cache.forget("c0")  # the rating landed while the old row was being read
    store.links["c0"] = link_view("c0", rating=4)
    fresh = asyncio.ensure_future(cache.lookup("c0"))  # must not join the stale read
    store.release.set()
    assert (await stale).link.rating is None  # type: ignore[union-attr]
    assert (await fresh).link.rating == 4  # type: ignore[union-attr]
    assert (await cache.lookup("c0")).link.rating == 4  # type: ignore[union-attr]
    assert store.reads == 2
