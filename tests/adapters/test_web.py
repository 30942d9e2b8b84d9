"""The card site in-process: aiohttp test server, a real SQLite store, real agent files."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from ccshortlink.config.agents import load_agents
from ccshortlink.core.privacy import mask_number
from tests.support.cardkit import (
    CODE,
    CUSTOMER,
    DAY,
    IPHONE,
    OWN_PAGE,
    Client,
    Site,
    issue,
    page,
    trust,
    visits,
)
from tests.support.pgkit import peek_db


async def test_card_shows_the_agent_and_a_call_back_button(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    response, body = await page(client, f"/{CODE}")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert '<html lang="zh-CN">' in body
    assert "王芳" in body and "CS1001" in body and "高级客服专员" in body
    assert 'href="tel:+862088880000,,1001"' in body
    assert f'href="{CODE}/vcard"' in body
    assert f'src="{CODE}/avatar?v=' in body
    assert f'<audio controls preload="none" src="{CODE}/greeting' in body
    # static 4.8 over 120 votes, no live ratings yet; 3200 + 1 call, 2800 + 1 customer
    assert "4.8" in body and "120 人评价" in body
    assert "3,201" in body and "2,801" in body
    assert "年度服务之星" in body and "耐心细致" in body
    assert len(body.encode("utf-8")) <= 14 * 1024


async def test_security_headers_on_every_page(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    for path in (f"/{CODE}", "/unknown0", f"/{CODE}/vcard"):
        response, _ = await page(client, path)
        csp = response.headers["Content-Security-Policy"]
        for directive in ("default-src 'none'", "img-src 'self' data:", "media-src 'self'",
                          "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
            assert directive in csp, (path, directive)
        assert "unsafe-inline" not in csp and "script-src" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "private, no-store"


async def test_inline_style_is_the_one_the_csp_hash_admits(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    response, body = await page(client, f"/{CODE}")
    style = re.search(r"<style>(.*?)</style>", body, re.DOTALL)
    assert style is not None and body.count("<style>") == 1 and " style=" not in body
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in response.headers["Content-Security-Policy"]


async def test_customer_number_never_leaves_the_server(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    forms = [CUSTOMER, CUSTOMER[1:], CUSTOMER[3:], mask_number(CUSTOMER), "138****8000"]
    for path in (f"/{CODE}", f"/{CODE}/vcard", f"/{CODE}/call"):
        response, body = await page(client, path)
        exposed = body + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for form in forms:
            assert form not in exposed, (path, form)


async def test_markup_in_agent_yaml_is_shown_as_text(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS3003")
    _, body = await page(client, f"/{CODE}")
    assert "<script>" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body


async def test_unknown_code_is_a_friendly_404_and_not_counted(site: Site,
                                                              client: Client) -> None:
    response, body = await page(client, "/NoSuchCode")
    assert response.status == 404
    assert "没有找到这个链接" in body and '<html lang="zh-CN">' in body
    response, body = await page(client, "/NoSuchCode", **{"Accept-Language": "en-US,en;q=0.8"})
    assert "We could not find this link" in body and '<html lang="en">' in body


async def test_expired_and_revoked_links_offer_the_hotline(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE, ttl=1 * DAY)
    await issue(site.store, site.clock, "Revoked234", customer_number="+8613900139000")
    await site.store.revoke_link("Revoked234", site.clock())
    site.clock.advance(2 * DAY)
    for code, says in ((CODE, "这个链接已过期"), ("Revoked234", "这个链接已失效")):
        response, body = await page(client, f"/{code}")
        assert response.status == 410
        assert says in body
        assert 'href="tel:400-820-8820"' in body and "拨打客服热线" in body
        assert "CS1001" not in body and "王芳" not in body
    assert await visits(site, "open") == 0


async def test_agent_removed_on_reload_gets_the_expired_page(site: Site, client: Client,
                                                             tmp_path: Path) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")
    text = (tmp_path / "agents.yaml").read_text(encoding="utf-8")
    (tmp_path / "agents.yaml").write_text(text.split("  - id: CS2002")[0], encoding="utf-8")
    site.directory[0] = load_agents(tmp_path / "agents.yaml")  # what SIGHUP does
    response, body = await page(client, f"/{CODE}")
    assert response.status == 410 and "Alice" not in body


async def test_many_misses_from_one_client_get_429(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    for n in range(20):
        response, _ = await page(client, f"/guess{n:05d}")
        assert response.status == 404
    response, body = await page(client, "/guess99999")
    assert response.status == 429 and "请求过于频繁" in body
    assert response.headers["Retry-After"] == "60"
    # once blocked, even a right guess is refused: enumeration learns nothing
    response, _ = await page(client, f"/{CODE}")
    assert response.status == 429
    # X-Forwarded-For from a peer that is not a trusted proxy is anyone's to forge:
    # ignored, so the limit stays on the real peer (the default trusts no proxy)
    response, _ = await page(client, f"/{CODE}", **{"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 429
    # behind a reverse proxy listed in [web] trusted_proxies, another customer is another client
    trust(site, "127.0.0.0/8")
    response, _ = await page(client, f"/{CODE}", **{"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200
    site.clock.advance(61)
    response, _ = await page(client, f"/{CODE}")
    assert response.status == 200


async def test_opens_count_browsers_but_not_head_or_bots(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    head = await client.head(f"/{CODE}", headers={"User-Agent": IPHONE})
    assert head.status == 200
    for bot in ("WhatsApp/2.23.20.0", "facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0",
                "TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Discordbot/2.0)",
                "LinkedInBot/1.0", "Mozilla/5.0 (compatible; Googlebot/2.1)", ""):
        response, _ = await page(client, f"/{CODE}", **{"User-Agent": bot})
        assert response.status == 200
    await page(client, f"/{CODE}", **{"Sec-Purpose": "prefetch"})
    assert await visits(site, "open") == 0
    await page(client, f"/{CODE}")
    await page(client, f"/{CODE}")
    assert await visits(site, "open") == 2
    with peek_db(site.store) as db:
        clients = {row[0] for row in db.execute("SELECT client FROM visits")}
    assert clients == {"127.0.0.0"}  # the /24, never the address


async def test_rating_is_stored_editable_and_moves_the_average(site: Site,
                                                               client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")  # static 5.0 over 3 votes
    response = await client.post(f"/{CODE}/rate", data={"stars": "1", "comment": "Too slow"},
                                 headers={"User-Agent": IPHONE, **OWN_PAGE},
                                 allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"../{CODE}?rated=1#rate"
    _, body = await page(client, f"/{CODE}?rated=1")
    assert "Thank you for your rating!" in body
    assert "4.0" in body and "4 ratings" in body  # (3 * 5 + 1) / 4
    assert "Too slow" in body and 'value="1" id="s1" checked' in body
    # the same link rates again: the rating is replaced, not added
    await client.post(f"/{CODE}/rate", data={"stars": "5", "comment": ""},
                      headers={"User-Agent": IPHONE, **OWN_PAGE}, allow_redirects=False)
    _, body = await page(client, f"/{CODE}")
    assert "5.0" in body and "4 ratings" in body and "Too slow" not in body
    assert await visits(site, "open") == 1  # the redirect after rating is not a new open
    metrics = await (await client.get("/metrics")).text()
    assert "ccshortlink_ratings_total 2.0" in metrics


async def test_figures_from_elsewhere_show_within_half_a_minute(site: Site,
                                                               client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")
    _, body = await page(client, f"/{CODE}")
    assert "3 ratings" in body
    # a rating left through another link of the same agent (as another server would)
    other = await issue(site.store, site.clock, "OtherLnk23", agent_id="CS2002",
                        customer_number="+8613900139000", linkedid="2.1")
    await site.store.rate_link(other, 1, "", site.clock())
    site.clock.advance(31)
    _, body = await page(client, f"/{CODE}")
    assert "4.0" in body and "4 ratings" in body


async def test_bad_rating_forms_are_refused_with_the_reason(site: Site,
                                                             client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")
    response = await client.post(f"/{CODE}/rate", data={"stars": "9"}, headers=OWN_PAGE)
    assert response.status == 400 and "Please choose 1 to 5 stars." in await response.text()
    response = await client.post(f"/{CODE}/rate", data={"stars": "4", "comment": "x" * 281},
                                 headers=OWN_PAGE)
    body = await response.text()
    assert response.status == 400 and "at most 280 characters" in body
    assert "x" * 281 in body  # the comment is kept for the customer to shorten
    response = await client.post(f"/{CODE}/rate", data={"stars": "4"},
                                 headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403
    _, body = await page(client, f"/{CODE}")
    assert "5.0" in body and "3 ratings" in body


async def test_ratings_are_rate_limited_per_client(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    statuses = [(await client.post(f"/{CODE}/rate", data={"stars": "5"}, headers=OWN_PAGE,
                                   allow_redirects=False)).status for _ in range(11)]
    assert statuses == [303] * 10 + [429]


async def test_call_taps_are_counted_and_redirect_to_tel(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")
    response, _ = await page(client, f"/{CODE}/call")
    assert response.status == 302
    assert response.headers["Location"] == "tel:+14155550100;ext=22"
    # the hyperlink-auditing ping the card's tel: button sends
    ping = await client.post(f"/{CODE}/call", data=b"PING",
                             headers={"User-Agent": IPHONE, "Content-Type": "text/ping",
                                      "Ping-To": "tel:+14155550100;ext=22", **OWN_PAGE})
    assert ping.status == 204
    head = await client.head(f"/{CODE}/call", headers={"User-Agent": IPHONE},
                             allow_redirects=False)
    assert head.status == 302
    assert await visits(site, "call") == 2
