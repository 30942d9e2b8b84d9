"""The web layer's pure parts: language choice, bots, address anonymising, limits, card merge."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest

from ccshortlink.app.cardcache import AgentFiguresCache
from ccshortlink.core.agents import Agent, Review
from ccshortlink.core.cardview import build_card, clean_comment, merge_satisfaction, tel_uri
from ccshortlink.core.records import AgentLiveStats, RatingView
from ccshortlink.ops.metrics import Metrics
from ccshortlink.web.guard import (
    SlidingLimiter,
    anonymise,
    client_address,
    client_key,
    is_bot,
    is_foreign_post,
    post_refusal,
    unusable_proxies,
)
from ccshortlink.web.i18n import STRINGS, choose_language
from tests.support.cardkit import Clock


def test_every_language_has_every_string() -> None:
    keys = {lang: set(table) for lang, table in STRINGS.items()}
    assert keys["zh-CN"] == keys["en"]


@pytest.mark.parametrize(("agent_language", "header", "expected"), [
    # the visitor's browser decides the labels; the agent's language only when it names
    # neither zh nor en
    ("en", "zh-CN,zh;q=0.9", "zh-CN"),
    ("zh", "en", "en"),
    ("en", "fr-FR,fr;q=0.9", "en"),
    ("en", "", "en"),
    ("", "en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("", "fr-FR,fr;q=0.9,zh-TW;q=0.5,en;q=0.4", "zh-CN"),
    ("", "fr;q=1, en;q=0.3, zh;q=0.6", "zh-CN"),
    ("", "en;q=0, fr", "zh-CN"),
    ("", "", "zh-CN"),
    ("de", "garbage;q=x, en", "en"),
])
def test_language_choice(agent_language: str, header: str, expected: str) -> None:
    assert choose_language(agent_language, header) == expected


@pytest.mark.parametrize("user_agent", [
    "WhatsApp/2.23.20.0 A", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "TelegramBot (like TwitterBot)", "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0)", "Mozilla/5.0 SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Applebot/0.1",
    "Mozilla/5.0 (compatible; bingbot/2.0)", "Mozilla/5.0 (compatible; Googlebot/2.1)",
    "SomeCrawler/3.0", "Mozilla/5.0 (compatible; MJ12bot/v1.4.8)", "my-spider", "",
])
def test_link_previewers_are_bots(user_agent: str) -> None:
    assert is_bot(user_agent)


@pytest.mark.parametrize("user_agent", [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; CUBOT X50) AppleWebKit/537.36 Chrome/120 Mobile",
    "Mozilla/5.0 (Linux; Android 13; V2183A) AppleWebKit/537.36 Chrome/107 Mobile "
    "MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 NetType/4G Language/zh_CN",
])
def test_phones_are_people(user_agent: str) -> None:
    assert not is_bot(user_agent)


def test_addresses_are_anonymised_to_their_network() -> None:
    assert anonymise("203.0.113.77") == "203.0.113.0"
    assert anonymise("::ffff:198.51.100.9") == "198.51.100.0"
    assert anonymise("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::"
    assert anonymise(None) == "" and anonymise("not-an-ip") == ""
    assert client_key("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd:12::"
    assert client_key("203.0.113.77") == "203.0.113.77"


def test_forwarded_for_counts_for_nothing_without_trusted_proxies() -> None:
    # the default trusts no proxy: even a loopback peer's header may be the visitor's own
    assert client_address("127.0.0.1", "10.9.8.7, 203.0.113.5") == "127.0.0.1"
    assert client_address("198.51.100.2", "203.0.113.5") == "198.51.100.2"
    assert client_address("198.51.100.2", "203.0.113.5", ("127.0.0.1",)) == "198.51.100.2"


LOCAL = ("127.0.0.1", "::1")


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    assert client_address("127.0.0.1", "10.9.8.7, 203.0.113.5", LOCAL) == "203.0.113.5"
    assert client_address("::1", "2001:db8::1", LOCAL) == "2001:db8::1"
    assert client_address("::ffff:127.0.0.1", "203.0.113.5", LOCAL) == "203.0.113.5"
    assert client_address("127.0.0.1", "", LOCAL) == "127.0.0.1"
    assert client_address("127.0.0.1", "garbage", LOCAL) == "127.0.0.1"
    assert client_address(None, "203.0.113.5", LOCAL) is None


def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy() -> None:
    chain = ("10.0.0.0/8", "192.0.2.7")  # a load balancer network and a CDN edge
    # visitor-sent 6.6.6.6 (forged), the real client, then two of our own hops
    header = "6.6.6.6, 203.0.113.5, 192.0.2.7, 10.1.2.3"
    assert client_address("10.0.0.1", header, chain) == "203.0.113.5"
    # every hop is ours: the left-most one is the best we know
    assert client_address("10.0.0.1", "10.4.4.4, 10.1.2.3", chain) == "10.4.4.4"
    # a garbage hop stops the walk at the last address a trusted proxy vouched for
    assert client_address("10.0.0.1", "203.0.113.5, junk, 10.1.2.3", chain) == "10.1.2.3"
    # a bad trusted_proxies entry trusts nothing rather than everything
    assert client_address("10.0.0.1", "203.0.113.5", ("not-a-network",)) == "10.0.0.1"
    assert unusable_proxies(("10.0.0.0/8", "::1", "not-a-network", "10.0.0.0/33")) == [
        "not-a-network", "10.0.0.0/33"]


OURS = "https://c.example.com/Kd7mPq2xZ9"


@pytest.mark.parametrize(("fetch_site", "origin", "referer", "host", "refusal"), [
    ("same-origin", "https://c.example.com", None, "c.example.com", ""),
    ("same-origin", None, None, "c.example.com", ""),  # the browser's word is enough
    ("", "https://c.example.com", None, "127.0.0.1:8080", ""),  # behind a proxy: public_url
    ("", "http://127.0.0.1:8080", None, "127.0.0.1:8080", ""),  # straight to the daemon
    ("", "https://C.Example.com:443", None, "127.0.0.1:8080", ""),
    ("", None, OURS, "127.0.0.1:8080", ""),  # an older browser: Referer only
    ("", "", "http://127.0.0.1:8080/Kd7mPq2xZ9?rated=1", "127.0.0.1:8080", ""),
    ("", None, None, "c.example.com", "no_origin"),  # a script
    ("", "null", None, "c.example.com", "null_origin"),  # a sandboxed frame, a data: page
    ("", None, "https://evil.example/c.example.com", "c.example.com", "foreign_referer"),
    ("", "null", "https://evil.example/", "c.example.com", "foreign_referer"),
    ("", "https://evil.example", OURS, "c.example.com", "foreign_origin"),  # Origin first
    ("cross-site", "null", None, "c.example.com", "cross_site"),
    ("cross-site", "https://c.example.com", OURS, "c.example.com", "cross_site"),
    ("same-site", "https://other.example.com", None, "c.example.com", "cross_site"),
    ("none", None, None, "c.example.com", "cross_site"),
    ("", "https://evil.example", None, "c.example.com", "foreign_origin"),
    ("", "https://c.example.com.evil.example", None, "c.example.com", "foreign_origin"),
    ("", "http://c.example.com:8443", None, "c.example.com", "foreign_origin"),
    ("", "not a url", None, "c.example.com", "foreign_origin"),
])
def test_foreign_posts_are_told_apart(fetch_site: str, origin: str | None, referer: str | None,
                                      host: str, refusal: str) -> None:
    assert post_refusal(fetch_site, origin, referer, "https://c.example.com", host) == refusal
    assert is_foreign_post(fetch_site, origin, referer, "https://c.example.com",
                           host) is bool(refusal)


def test_sliding_limiter_counts_per_client_and_forgets_after_the_window() -> None:
    clock = Clock()
    limiter = SlidingLimiter(3, 60.0, clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")
    clock.advance(30)
    assert not limiter.allow("a")
    clock.advance(31)
    assert limiter.allow("a")


def test_sliding_limiter_memory_is_bounded() -> None:
    clock = Clock()
    limiter = SlidingLimiter(1, 60.0, clock, max_clients=100)
    for n in range(1000):
        limiter.hit(f"client{n}")
    assert len(limiter._events) <= 100
    assert limiter.blocked("client999")


def test_tel_uris_keep_pauses_and_extensions() -> None:
    assert tel_uri("+862088880000,,1001") == "tel:+862088880000,,1001"
    assert tel_uri("+1 415 555 0100;ext=22") == "tel:+14155550100;ext=22"
    assert tel_uri("400-820-8820") == "tel:400-820-8820"
    assert tel_uri("+86 20 8888 0000 #5") == "tel:+862088880000%235"
    assert tel_uri('+1"><script>') == "tel:+1script"


def _agent(**overrides: object) -> Agent:
    fields: dict[str, object] = {"id": "CS1", "extensions": ("1",), "name": "王芳", "phone": "+86"}
    fields.update(overrides)
    return Agent(**fields)  # type: ignore[arg-type]


def test_satisfaction_merges_static_votes_with_live_ratings() -> None:
    live = AgentLiveStats(calls_handled=0, customers_served=0, rating_count=2, rating_sum=6)
    merged = merge_satisfaction(_agent(satisfaction=4.5, satisfaction_votes=2), live)
    assert merged.score == pytest.approx(3.75) and merged.votes == 4 and merged.stars == 4
    none = AgentLiveStats(0, 0, 0, 0)
    assert merge_satisfaction(_agent(), none).score is None
    only_static = merge_satisfaction(_agent(satisfaction=4.9), none)
    assert only_static.score == pytest.approx(4.9) and only_static.votes == 0
    only_live = merge_satisfaction(_agent(), AgentLiveStats(0, 0, 1, 2))
    assert only_live.score == 2.0 and only_live.votes == 1


def test_card_puts_page_reviews_first_and_adds_live_counts() -> None:
    agent = _agent(calls_handled=100, customers_served=90,
                   reviews=tuple(Review(stars=5, text=f"yaml {n}") for n in range(5)))
    ratings = [RatingView(stars=2, comment="slow", created_at=1_700_000_000.0)]
    view = build_card(agent, AgentLiveStats(7, 5, 1, 2), ratings, UTC)
    assert (view.calls_handled, view.customers_served) == (107, 95)
    assert [r.text for r in view.reviews] == ["slow", "yaml 0", "yaml 1"]
    assert view.reviews[0].date == "2023-11-14"


def test_comments_lose_control_characters_but_keep_lines() -> None:
    assert clean_comment("  great\r\nservice\x00\x1b[31m  ") == "great\nservice[31m"


def test_metrics_registries_are_independent() -> None:
    first, second = Metrics(), Metrics()
    first.ratings.inc()
    assert b"ccshortlink_ratings_total 1.0" in first.exposition()
    assert b"ccshortlink_ratings_total 0.0" in second.exposition()
    first.set_outbox({"queued": 4, "weird": 1})
    text = first.exposition().decode()
    assert 'ccshortlink_outbox_messages{status="queued"} 4.0' in text
    first.set_outbox({})
    assert 'ccshortlink_outbox_messages{status="queued"} 0.0' in first.exposition().decode()


class CountingStore:
    """Answers the two figure queries, counting them; each waits for `release`."""

    def __init__(self) -> None:
        self.loads = 0
        self.rating_sum = 0
        self.release = asyncio.Event()

    async def agent_live_stats(self, agent_id: str) -> AgentLiveStats:
        self.loads += 1
        await self.release.wait()
        return AgentLiveStats(calls_handled=1, customers_served=1, rating_count=1,
                              rating_sum=self.rating_sum)

    async def recent_ratings(self, agent_id: str, limit: int = 5) -> list[RatingView]:
        return []


async def test_figures_are_loaded_once_for_many_concurrent_views() -> None:
    store, clock = CountingStore(), Clock()
    cache = AgentFiguresCache(store, clock, ttl=30.0)  # type: ignore[arg-type]
    views = [asyncio.ensure_future(cache.get("CS1")) for _ in range(50)]
    await asyncio.sleep(0)
    store.release.set()
    assert len({id(f) for f in await asyncio.gather(*views)}) == 1
    assert store.loads == 1


async def test_figures_expire_and_are_forgotten_after_a_rating() -> None:
    store, clock = CountingStore(), Clock()
    store.release.set()
    cache = AgentFiguresCache(store, clock, ttl=30.0)  # type: ignore[arg-type]
    store.rating_sum = 4
    assert (await cache.get("CS1")).live.rating_sum == 4
    store.rating_sum = 5
    clock.advance(29)
    assert (await cache.get("CS1")).live.rating_sum == 4 and store.loads == 1
    clock.advance(2)
    assert (await cache.get("CS1")).live.rating_sum == 5 and store.loads == 2
    store.rating_sum = 1
    cache.forget("CS1")
    assert (await cache.get("CS1")).live.rating_sum == 1 and store.loads == 3


async def test_a_load_under_way_when_forgotten_is_not_kept() -> None:
    store, clock = CountingStore(), Clock()
    cache = AgentFiguresCache(store, clock, ttl=30.0)  # type: ignore[arg-type]
    stale = asyncio.ensure_future(cache.get("CS1"))
    while store.loads == 0:  # noqa: ASYNC110 (one loop turn at a time, to reach the store's load)
        await asyncio.sleep(0)
    cache.forget("CS1")  # a rating landed while the old figures were being read
    store.rating_sum = 3
    store.release.set()
    await stale
    assert (await cache.get("CS1")).live.rating_sum == 3 and store.loads == 2
