"""The links API in-process on a real SQLite file: list, look up, revoke, extend, and the trace."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ccshortlink.core.policy import PolicyConfig
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.records import SmsDraft
from ccshortlink.store import Store
from tests.support.cardkit import (
    CODE,
    CUSTOMER,
    DAY,
    Client,
    Site,
    build_site,
    codes,
    issue,
    page,
    write_agents,
)
from tests.support.pgkit import peek_db, reports_for

AUTH = {"Authorization": "Bearer s3cret-token"}
OTHER = "+8613900139000"


async def queue_link(site: Site, code: str, customer: str, *, in_days: float) -> None:
    """A link whose SMS is still waiting in the outbox (deferred `in_days` ahead)."""
    now = site.clock()

    def draft(used: str) -> SmsDraft:
        return SmsDraft(text=f"card https://c.example.com/{used}", data_coding=0, esm_class=0,
                        parts=(b"card",), not_before=now + in_days * DAY,
                        expires_at=now + 30 * DAY)

    await site.store.issue_link(agent_id="CS2002", customer_number=customer, linkedid="9.1",
                                now=now, ttl=30 * DAY, new_code=codes(code), sms=draft)


def sms_rows(site: Site) -> list[tuple[str, str]]:
    with peek_db(site.store) as db:
        return [(r[0], r[1]) for r in db.execute("SELECT status, error FROM sms ORDER BY id")]


async def test_the_links_api_needs_the_token_and_is_absent_without_one(
        site: Site, client: Client, store: Store, tmp_path: Path) -> None:
    await issue(site.store, site.clock, CODE)
    for method, path in (("GET", "/api/v1/links?number=13800138000"),
                         ("GET", f"/api/v1/links/{CODE}"), ("DELETE", f"/api/v1/links/{CODE}"),
                         ("POST", f"/api/v1/links/{CODE}/extend")):
        response = await client.request(method, path,
                                        headers={"Authorization": "Bearer s3cret-tokeX"})
        assert response.status == 401, (method, path)
    assert (await page(client, f"/{CODE}"))[0].status == 200  # nothing was revoked
    off = build_site(store, write_agents(tmp_path), api_token="")
    async with TestClient(TestServer(off.app)) as other:
        response = await other.delete(f"/api/v1/links/{CODE}", headers=AUTH)
        assert response.status == 404
    assert (await page(client, f"/{CODE}"))[0].status == 200


async def test_list_by_number_shows_it_and_by_agent_masks_it(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    site.clock.advance(60)
    await issue(site.store, site.clock, "Other2345", customer_number=OTHER)
    await issue(site.store, site.clock, "Short2345", agent_id="CS2002", ttl=DAY)
    site.clock.advance(2 * DAY)  # Short2345 has expired

    # "+" unencoded in a query arrives as a space; national and spaced forms work too
    for number in ("+8613800138000", "13800138000", "138 0013 8000"):
        response = await client.get("/api/v1/links", params={"number": number}, headers=AUTH)
        assert response.status == 200
        links = (await response.json())["links"]
        assert [(x["code"], x["customer_number"]) for x in links] == [(CODE, CUSTOMER)]
    raw = await client.get("/api/v1/links?number=+8613800138000", headers=AUTH)
    assert [x["code"] for x in (await raw.json())["links"]] == [CODE]

    response = await client.get("/api/v1/links", params={"agent": "CS1001"}, headers=AUTH)
    links = (await response.json())["links"]
    assert [(x["code"], x["customer_number"]) for x in links] == [
        ("Other2345", mask_number(OTHER)), (CODE, mask_number(CUSTOMER))]  # newest first
    assert links[0]["url"] == "https://c.example.com/Other2345"
    assert links[0]["status"] == "live" and links[0]["expires_at"].startswith("2023-12-")

    response = await client.get("/api/v1/links", params={"all": "1"}, headers=AUTH)
    statuses = {x["code"]: x["status"] for x in (await response.json())["links"]}
    assert statuses == {CODE: "live", "Other2345": "live", "Short2345": "expired"}
    assert (await client.get("/api/v1/links?number=hello", headers=AUTH)).status == 400
    assert (await client.get("/api/v1/links?limit=0", headers=AUTH)).status == 400

    response = await client.get(f"/api/v1/links/{CODE}", headers=AUTH)
    shown = await response.json()
    assert (shown["code"], shown["agent"], shown["customer_number"]) == (
        CODE, "CS1001", mask_number(CUSTOMER))
    assert (await client.get("/api/v1/links/NoSuchOne", headers=AUTH)).status == 404


async def test_delete_answers_410_at_once_and_cancels_its_waiting_sms(
        site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    await queue_link(site, "Queued234", OTHER, in_days=0.5)  # held by quiet hours, say
    assert (await page(client, f"/{CODE}"))[0].status == 200  # now in the card cache

    response = await client.delete(f"/api/v1/links/{CODE}", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["revoked_now"], body["sms_cancelled"]) == ("revoked", True, 0)
    assert [(c["kind"], c["by"]) for c in body["changes"]] == [("revoked", "api")]
    response, html = await page(client, f"/{CODE}")  # no clock moved: not the cache's TTL
    assert response.status == 410
    assert "这个链接已失效" in html and 'href="tel:400-820-8820"' in html and "王芳" not in html
    again = await client.delete(f"/api/v1/links/{CODE}", headers=AUTH)
    assert again.status == 200 and (await again.json())["revoked_now"] is False
    assert (await client.delete("/api/v1/links/NoSuchOne", headers=AUTH)).status == 404

    response = await client.delete("/api/v1/links/Queued234", headers=AUTH)
    assert (await response.json())["sms_cancelled"] == 1
    assert sms_rows(site) == [("expired", "link revoked")]
    site.clock.advance(DAY)  # past the deferral: the outbox has nothing to send
    assert (await site.store.claim_due_sms(site.clock(), 10)).sms == []

    response = await client.get("/api/v1/links", params={"number": CUSTOMER}, headers=AUTH)
    assert (await response.json())["links"] == []  # live links only, unless all=1


async def test_extend_adds_days_and_a_revoked_link_stays_revoked(
        site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE, ttl=DAY)
    site.clock.advance(2 * DAY)
    assert (await page(client, f"/{CODE}"))[0].status == 410  # expired
    for bad in ({"days": 0}, {"days": 366}, {"days": "3"}, {"days": True}, {}, [3]):
        response = await client.post(f"/api/v1/links/{CODE}/extend", json=bad, headers=AUTH)
        assert response.status == 400, bad
    response = await client.post(f"/api/v1/links/{CODE}/extend", json={"days": 3},
                                 headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "live"
    with peek_db(site.store) as db:
        (expires_at,) = db.execute("SELECT expires_at FROM links").fetchone()
    assert expires_at == site.clock() + 3 * DAY  # an expired link counts from now
    assert (await page(client, f"/{CODE}"))[0].status == 200

    await client.delete(f"/api/v1/links/{CODE}", headers=AUTH)
    response = await client.post(f"/api/v1/links/{CODE}/extend", json={"days": 3},
                                 headers=AUTH)
    assert response.status == 409
    assert (await page(client, f"/{CODE}"))[0].status == 410
    missing = await client.post("/api/v1/links/NoSuchOne/extend", json={"days": 3},
                                headers=AUTH)
    assert missing.status == 404

    with reports_for(site.store) as reports:
        trace = reports.trace(CUSTOMER, PolicyConfig(), site.clock())
    assert trace is not None
    changes = [(e.kind, e.facts.get("by")) for e in trace.events if e.kind.startswith("link_")]
    assert changes == [("link_created", None), ("link_extended", "api"), ("link_revoked", "api")]
