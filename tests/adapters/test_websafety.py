"""Safe web defaults, in-process: foreign posts refused, gzip and language negotiated."""

from __future__ import annotations

import gzip

import aiohttp
import pytest

from ccshortlink.web.context import DEPS
from ccshortlink.web.encoding import accepts_gzip
from tests.support.cardkit import (
    CODE,
    IPHONE,
    OWN_PAGE,
    Client,
    Site,
    issue,
    visits,
)
from tests.support.pgkit import peek_db

AUTH = {"Authorization": "Bearer s3cret-token"}
CARD_URL = f"https://c.example.com/{CODE}"


async def rate(client: Client, stars: str, **headers: str) -> int:
    response = await client.post(f"/{CODE}/rate", data={"stars": stars},
                                 headers={"User-Agent": IPHONE, **headers},
                                 allow_redirects=False)
    return response.status


async def test_a_rating_is_taken_only_from_the_cards_own_page(site: Site,
                                                              client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    refused = (
        {"Origin": "https://evil.example"},  # a foreign Origin
        {"Origin": "https://evil.example", "Referer": CARD_URL},  # Origin decides
        {"Referer": "https://evil.example/page"},  # only a Referer, and not ours
        {},  # neither: a script
        {"Origin": "null"},  # a sandboxed frame or a data: page
        {"Sec-Fetch-Site": "same-site", "Origin": "https://shop.example.com"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
    )
    for headers in refused:
        assert await rate(client, "1", **headers) == 403, headers
    accepted = (
        OWN_PAGE,  # a current browser
        {"Referer": f"{CARD_URL}?rated=1"},  # an older browser: only a Referer, ours
        {"Origin": f"http://{client.host}:{client.port}"},  # straight to the daemon
    )
    for headers in accepted:
        assert await rate(client, "5", **headers) == 303, headers
    with peek_db(site.store) as db:  # none of the forged one-star ratings
        assert db.execute("SELECT stars FROM ratings").fetchall() == [(5,)]
    # the CRM's send API carries a token, no Origin, and is not affected
    response = await client.post("/api/v1/send", json={"agent": "CS1001", "to": "+86138001"},
                                 headers=AUTH)
    assert response.status == 202


async def test_the_cards_own_requests_carry_their_origin(site: Site, client: Client) -> None:
    # with no-referrer, an older browser's same-origin form post has neither header
    await issue(site.store, site.clock, CODE)
    response = await client.get(f"/{CODE}", headers={"User-Agent": IPHONE})
    assert response.headers["Referrer-Policy"] == "same-origin"


async def test_a_call_tap_pinged_from_another_site_is_refused(site: Site,
                                                               client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {}):
        response = await client.post(f"/{CODE}/call", headers={"User-Agent": IPHONE, **headers})
        assert response.status == 403, headers
    assert await visits(site, "call") == 0
    response = await client.post(f"/{CODE}/call", headers={"User-Agent": IPHONE, **OWN_PAGE})
    assert response.status == 204 and await visits(site, "call") == 1
    # the GET form dials and counts, unless another site embedded it
    response = await client.get(f"/{CODE}/call", headers={
        "User-Agent": IPHONE, "Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert response.status == 302 and await visits(site, "call") == 1


async def raw_get(client: Client, path: str, **headers: str) -> tuple[aiohttp.ClientResponse,
                                                                        bytes]:
    """The bytes as they came over the wire (no transparent decompression)."""
    async with aiohttp.ClientSession(auto_decompress=False) as session, \
            session.get(client.make_url(path), allow_redirects=False,
                        headers={"User-Agent": IPHONE, **headers}) as response:
        return response, await response.read()


async def test_the_card_is_gzipped_when_the_browser_asks(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    plain, identity = await raw_get(client, f"/{CODE}", **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and b"<!doctype html>" in identity
    for accept in ("gzip, deflate, br", "br;q=1.0, gzip;q=0.8, *;q=0.1", "*"):
        packed, body = await raw_get(client, f"/{CODE}", **{"Accept-Encoding": accept})
        assert packed.headers["Content-Encoding"] == "gzip", accept
        assert int(packed.headers["Content-Length"]) == len(body) < len(identity) // 2
        assert gzip.decompress(body) == identity
        vary = {v.strip() for v in packed.headers["Vary"].split(",")}
        assert {"Accept-Encoding", "Accept-Language"} <= vary
    for refusing in ("gzip;q=0, identity", "deflate", ""):
        response, body = await raw_get(client, f"/{CODE}", **{"Accept-Encoding": refusing})
        assert "Content-Encoding" not in response.headers and body == identity, refusing
    assert "Vary" in plain.headers
    # compressed once: the page kept for this link holds the compressed bytes beside the plain
    entry = await site.app[DEPS].links.lookup(CODE)
    assert entry is not None and {"zh-CN", "zh-CN+gzip"} <= set(entry.pages)


async def test_pages_made_for_one_request_are_gzipped_too(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    for path in ("/unknown23", f"/{CODE}?rated=1"):
        response, body = await raw_get(client, path, **{"Accept-Encoding": "gzip"})
        assert response.headers["Content-Encoding"] == "gzip", path
        assert b"<!doctype html>" in gzip.decompress(body)
        assert "Accept-Language" in response.headers["Vary"]


async def test_the_labels_follow_the_visitor_and_the_agents_words_stay(site: Site,
                                                                       client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")  # an agent who writes English
    response, body = await raw_get(client, f"/{CODE}", **{"Accept-Language": "zh-CN,zh;q=0.9",
                                                         "Accept-Encoding": "identity"})
    text = body.decode()
    assert '<html lang="zh-CN">' in text and "一键回拨" in text and "保存到通讯录" in text
    assert "Here to help, every time." in text  # the slogan as written
    response, body = await raw_get(client, f"/{CODE}", **{"Accept-Language": "en-US,en;q=0.8",
                                                         "Accept-Encoding": "identity"})
    text = body.decode()
    assert '<html lang="en">' in text and "Call back" in text and "一键回拨" not in text
    assert "Accept-Language" in response.headers["Vary"]


@pytest.mark.parametrize(("header", "gzip_ok"), [
    ("gzip", True), ("GZIP;q=0.5", True), ("x-gzip", True), ("*", True),
    ("gzip;q=0", False), ("*, gzip;q=0", False), ("gzip;q=0, *", False),
    ("identity", False), ("", False), ("deflate, br", False), ("gzip;q=oops", False),
])
def test_accept_encoding_is_read_as_rfc_9110_says(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok
