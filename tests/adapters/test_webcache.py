"""The card's fast path: links and pages reused, and still right at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ccshortlink.app.linkcache import LinkCache
from ccshortlink.config.agents import load_agents
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.records import LinkView
from ccshortlink.web.context import DEPS
from tests.support.cardkit import (
    CODE,
    DAY,
    IPHONE,
    OWN_PAGE,
    START,
    Client,
    Clock,
    Site,
    issue,
    page,
)

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
                                 headers={"User-Agent": IPHONE, **OWN_PAGE},
                                 allow_redirects=False)
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
