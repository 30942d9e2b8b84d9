"""The web layer's edges: bounded request bodies, malformed forms, trusted proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from multidict import CIMultiDict

from ccshortlink.config.agents import load_agents
from ccshortlink.config.settings import WebConfig
from ccshortlink.ops.metrics import Metrics
from ccshortlink.store import Store
from ccshortlink.web.app import make_app
from ccshortlink.web.context import DEPS
from tests.support.cardkit import (
    CODE,
    CUSTOMER,
    IPHONE,
    OWN_PAGE,
    Client,
    Site,
    issue,
    page,
    trust,
    write_agents,
)
from tests.support.pgkit import peek_db

AUTH = {"Authorization": "Bearer s3cret-token"}


@pytest.mark.parametrize(("body", "status", "error"), [
    (b"{not json", 400, "body must be JSON"),
    (b"\xff\xfe{}", 400, "body must be UTF-8 JSON"),
    (b"[1, 2]", 400, "body must be {"),
    (b'"CS1001"', 400, "body must be {"),
    (b"null", 400, "body must be {"),
    (b'{"agent": 1001, "to": "+8613800138000"}', 400, "body must be {"),
    (b'{"agent": "CS1001", "to": ["+8613800138000"]}', 400, "body must be {"),
    (b'{"agent": "CS1001", "to": "   "}', 400, "body must be {"),
    (b'{"agent": "CS1001", "to": "' + b"1" * 65 + b'"}', 400, "body must be {"),
    (b"[" * 100_000 + b"]" * 100_000, 413, "body larger than 16384 bytes"),
    (b"[" * 5_000 + b"]" * 5_000, 400, "JSON nested deeper than 32 levels"),
    (b'{"agent": "CS1001", "to": "x", "x": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
     400, "JSON nested deeper than 32 levels"),
    (b'{"agent": "CS1001", "to": "' + b"x" * 20_000 + b'"}', 413, "body larger than"),
])
async def test_send_api_refuses_bad_bodies_with_a_json_reason(
        site: Site, client: Client, body: bytes, status: int, error: str) -> None:
    response = await client.post("/api/v1/send", data=body,
                                 headers={**AUTH, "Content-Type": "application/json"})
    assert response.status == status
    assert response.content_type == "application/json"
    assert (await response.json())["error"].startswith(error)
    assert site.send_card.calls == []


async def test_send_api_caps_a_chunked_body_without_a_length(site: Site, client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 1024
    response = await client.post("/api/v1/send", data=chunks(), headers=AUTH)
    assert response.status == 413 and (await response.json())["error"].startswith("body larger")
    # a deep body within the cap is a 400, and the server is still answering
    deep = b'{"agent": "CS1001", "to": "+8613800138000", "x": ' + b"[" * 33 + b"]" * 33 + b"}"
    response = await client.post("/api/v1/send", data=deep, headers=AUTH)
    assert response.status == 400
    response = await client.post("/api/v1/send", json={"agent": "CS1001", "to": CUSTOMER},
                                 headers=AUTH)
    assert response.status == 202 and site.send_card.calls == [("CS1001", CUSTOMER)]
    # nesting up to the bound is still JSON we read
    ok = b'{"agent": "CS1001", "to": "+8613800138000", "x": ' + b"[" * 31 + b"]" * 31 + b"}"
    assert (await client.post("/api/v1/send", data=ok, headers=AUTH)).status == 202


async def test_send_api_checks_the_token_before_reading_the_body(site: Site,
                                                                 client: Client) -> None:
    for body in (b"[" * 5_000, b"{not json", b"x" * 100_000):
        response = await client.post("/api/v1/send", data=body)
        assert response.status == 401, body[:10]
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_malformed_rating_form_is_a_400(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    for content_type, body in (("multipart/form-data", b"--x\r\n\r\nstars=5"),
                               ("multipart/form-data; boundary=x", b"garbage"),
                               ("application/x-www-form-urlencoded", b"stars=%ff%fe")):
        response = await client.post(f"/{CODE}/rate", data=body,
                                     headers={"Content-Type": content_type, **OWN_PAGE},
                                     allow_redirects=False)
        assert response.status == 400, (content_type, response.status)
    # bytes that are not UTF-8 in a comment are shown as replacement characters, not refused
    response = await client.post(f"/{CODE}/rate", data=b"stars=4&comment=%ff%fe",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          **OWN_PAGE},
                                 allow_redirects=False)
    assert response.status == 303


async def test_visits_are_anonymised_from_the_trusted_proxy_header_only(
        site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    await page(client, f"/{CODE}", **{"X-Forwarded-For": "203.0.113.9"})
    trust(site, "127.0.0.1")
    await page(client, f"/{CODE}", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.77"})
    await site.app[DEPS].visits.flush()
    with peek_db(site.store) as db:
        clients = [row[0] for row in db.execute("SELECT client FROM visits ORDER BY id")]
    # untrusted: the forged header ignored; trusted: the right-most untrusted address
    assert clients == ["127.0.0.0", "198.51.100.0"]


async def test_an_oversized_rating_form_is_refused_not_a_crash(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    response = await client.post(f"/{CODE}/rate", data={"stars": "5", "comment": "x" * 70_000},
                                 headers=OWN_PAGE, allow_redirects=False)
    assert response.status == 413
    response = await client.post(f"/{CODE}/rate", data={"stars": "5"}, headers=OWN_PAGE,
                                 allow_redirects=False)
    assert response.status == 303


async def test_a_second_forwarded_for_line_cannot_hide_the_proxys(site: Site,
                                                                 client: Client) -> None:
    """A visitor's own X-Forwarded-For line comes first; the proxy's is added after it."""
    trust(site, "127.0.0.1")
    for n in range(20):
        await page(client, f"/miss{n:05d}", **{"X-Forwarded-For": "198.51.100.7"})
    headers = [("User-Agent", IPHONE), ("X-Forwarded-For", "203.0.113.1"),
               ("X-Forwarded-For", "198.51.100.7")]
    response = await client.get("/miss99999", headers=CIMultiDict(headers))
    assert response.status == 429  # still the same client: the forged first line is ignored


async def test_an_unusable_trusted_proxy_is_logged_and_trusted_for_nothing(
        store: Store, tmp_path: Path) -> None:
    config = WebConfig(host="127.0.0.1", port=0, public_url="https://c.example.com",
                       trusted_proxies=("127.0.0.1", "proxy.example.com"))
    with structlog.testing.capture_logs() as logged:
        make_app(store=store, agents=lambda: load_agents(write_agents(tmp_path)),
                 web_config=config, clock=lambda: 0.0, health=dict, metrics=Metrics(),
                 send_card=None, log=structlog.get_logger())
    assert [e for e in logged if e["event"] == "trusted_proxy_ignored"] == [
        {"event": "trusted_proxy_ignored", "entry": "proxy.example.com",
         "reason": "not an address or network", "log_level": "warning"}]
