"""The card site in-process: aiohttp test server, a real SQLite store, real agent files."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ccshortlink.config.agents import load_agents
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.records import SmsDraft
from ccshortlink.store import Store
from tests.support.cardkit import (
    CODE,
    CUSTOMER,
    DAY,
    IPHONE,
    Client,
    Site,
    build_site,
    issue,
    page,
    png,
    trust,
    visits,
    write_agents,
)


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
        assert response.headers["Referrer-Policy"] == "no-referrer"
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
    for code in (CODE, "Revoked234"):
        response, body = await page(client, f"/{code}")
        assert response.status == 410
        assert "这个链接已过期" in body
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
    with sqlite3.connect(site.store.path) as db:
        clients = {row[0] for row in db.execute("SELECT client FROM visits")}
    assert clients == {"127.0.0.0"}  # the /24, never the address


async def test_rating_is_stored_editable_and_moves_the_average(site: Site,
                                                               client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS2002")  # static 5.0 over 3 votes
    response = await client.post(f"/{CODE}/rate", data={"stars": "1", "comment": "Too slow"},
                                 headers={"User-Agent": IPHONE}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"../{CODE}?rated=1#rate"
    _, body = await page(client, f"/{CODE}?rated=1")
    assert "Thank you for your rating!" in body
    assert "4.0" in body and "4 ratings" in body  # (3 * 5 + 1) / 4
    assert "Too slow" in body and 'value="1" id="s1" checked' in body
    # the same link rates again: the rating is replaced, not added
    await client.post(f"/{CODE}/rate", data={"stars": "5", "comment": ""},
                      headers={"User-Agent": IPHONE}, allow_redirects=False)
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
    response = await client.post(f"/{CODE}/rate", data={"stars": "9"})
    assert response.status == 400 and "Please choose 1 to 5 stars." in await response.text()
    response = await client.post(f"/{CODE}/rate", data={"stars": "4", "comment": "x" * 281})
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
    statuses = [(await client.post(f"/{CODE}/rate", data={"stars": "5"},
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
                                      "Ping-To": "tel:+14155550100;ext=22"})
    assert ping.status == 204
    head = await client.head(f"/{CODE}/call", headers={"User-Agent": IPHONE},
                             allow_redirects=False)
    assert head.status == 302
    assert await visits(site, "call") == 2


async def test_vcard_download(site: Site, client: Client, tmp_path: Path) -> None:
    await issue(site.store, site.clock, CODE)
    response, text = await page(client, f"/{CODE}/vcard")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/vcard; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="CS1001.vcf"'
    raw = await response.read()
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    unfolded = text.replace("\r\n ", "")
    lines = unfolded.split("\r\n")
    assert lines[:2] == ["BEGIN:VCARD", "VERSION:3.0"] and lines[-2:] == ["END:VCARD", ""]
    for expected in ("FN:王芳", "N:王;芳;;;", "ORG:Example Telecom", "TITLE:高级客服专员",
                     "TEL;TYPE=WORK,VOICE:+862088880000,,1001", "NOTE:工号 CS1001"):
        assert expected in lines
    photo = next(line for line in lines if line.startswith("PHOTO;ENCODING=b;TYPE=PNG:"))
    assert base64.b64decode(photo.split(":", 1)[1]) == png()
    assert await visits(site, "vcard") == 1


async def test_avatar_and_greeting_are_served_with_types(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    avatar = await client.get(f"/{CODE}/avatar?v=1")
    assert avatar.status == 200 and avatar.headers["Content-Type"] == "image/png"
    assert "max-age=31536000" in avatar.headers["Cache-Control"]
    assert await avatar.read() == png()
    greeting = await client.get(f"/{CODE}/greeting", headers={"Range": "bytes=0-2"})
    assert greeting.status == 206 and greeting.headers["Content-Type"] == "audio/mpeg"
    assert await greeting.read() == b"ID3"
    await issue(site.store, site.clock, "NoAvatar23", agent_id="CS2002")
    assert (await client.get("/NoAvatar23/avatar")).status == 404
    _, body = await page(client, "/NoAvatar23")
    assert ">AW</span>" in body and "<audio" not in body  # initials, no greeting


async def test_language_choice(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE, agent_id="CS1001")
    await issue(site.store, site.clock, "English234", agent_id="CS2002")
    _, body = await page(client, f"/{CODE}", **{"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in body and "Call back" in body
    _, body = await page(client, "/English234", **{"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="en">' in body  # the agent's own language wins
    _, body = await page(client, f"/{CODE}", **{"Accept-Language": "fr-FR"})
    assert '<html lang="zh-CN">' in body and "一键回拨" in body


async def test_card_stays_within_14_kb_with_everything_filled(store: Store,
                                                              tmp_path: Path) -> None:
    long_text = "服务" * 200
    records = "".join(f"      - title: {long_text}\n        detail: {long_text}\n"
                      f"        date: 2024-01-0{n}\n" for n in range(1, 9))
    reviews = "".join(f"      - stars: 4\n        text: {long_text}\n        author: {long_text}\n"
                      for _ in range(8))
    yaml_text = (
        "agents:\n  - id: CS9009\n    extensions: ['9009']\n"
        f"    name: 欧阳娜娜{long_text}\n    phone: '+862088889009'\n"
        f"    title: {long_text}\n    slogan: {long_text}\n"
        f"    service_records:\n{records}    reviews:\n{reviews}"
    )
    site = build_site(store, write_agents(tmp_path, yaml_text))
    await issue(store, site.clock, CODE, agent_id="CS9009")
    for n in range(6):
        code = await issue(store, site.clock, f"Other{n:05d}", agent_id="CS9009",
                           customer_number=f"+861380013{n:04d}", linkedid=f"1.{n}")
        await store.rate_link(code, 3, "好" * 280, site.clock())
    async with TestClient(TestServer(site.app)) as client:
        response, body = await page(client, f"/{CODE}")
    assert response.status == 200 and "欧阳娜娜" in body and "好" * 280 in body
    assert len(body.encode("utf-8")) <= 14 * 1024


async def test_healthz_reports_each_part(site: Site, client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"ami": "up", "smpp": "up", "db": "up"}
    site.states["smpp"] = "down"
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["smpp"] == "down"


async def test_healthz_sees_a_closed_database(site: Site, client: Client) -> None:
    await site.store.close()
    response = await client.get("/healthz")
    assert response.status == 503 and (await response.json())["db"] == "down"


async def test_metrics_text(site: Site, client: Client) -> None:
    draft = SmsDraft(text="hi", data_coding=0, esm_class=0, parts=(b"hi",),
                     not_before=site.clock(), expires_at=site.clock() + DAY)
    await site.store.issue_link(agent_id="CS1001", customer_number=CUSTOMER, linkedid="9.1",
                                now=site.clock(), ttl=DAY, new_code=lambda: CODE,
                                sms=lambda code: draft)
    site.metrics.calls_seen.inc()
    site.metrics.sms.labels(status="submitted").inc()
    await page(client, f"/{CODE}")
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    for line in ("ccshortlink_calls_seen_total 1.0", "ccshortlink_calls_ended_total 0.0",
                 'ccshortlink_sms_total{status="submitted"} 1.0',
                 'ccshortlink_visits_total{kind="open"} 1.0', "ccshortlink_ratings_total 0.0",
                 'ccshortlink_outbox_messages{status="queued"} 1.0',
                 'ccshortlink_outbox_messages{status="delivered"} 0.0'):
        assert line in text.splitlines(), line
    assert "python_gc" not in text  # a private registry, not the process-wide default


async def test_send_api(site: Site, client: Client) -> None:
    body = {"agent": "CS1001", "to": CUSTOMER}
    assert (await client.post("/api/v1/send", json=body)).status == 401
    wrong = await client.post("/api/v1/send", json=body,
                              headers={"Authorization": "Bearer s3cret-tokeX"})
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    auth = {"Authorization": "Bearer s3cret-token"}
    bad = await client.post("/api/v1/send", data=b"{not json", headers=auth)
    assert bad.status == 400
    assert (await client.post("/api/v1/send", json={"agent": "CS1001"}, headers=auth)).status == 400
    assert site.send_card.calls == []
    response = await client.post("/api/v1/send", json=body, headers=auth)
    assert response.status == 202
    assert await response.json() == {"status": "queued", "code": "Qx7", "sms_id": 3}
    assert site.send_card.calls == [("CS1001", CUSTOMER)]
    site.send_card.answer = {"status": "refused", "reason": "opted_out"}
    response = await client.post("/api/v1/send", json=body, headers=auth)
    assert response.status == 422 and (await response.json())["reason"] == "opted_out"


async def test_send_api_is_absent_without_a_token(store: Store, tmp_path: Path) -> None:
    site = build_site(store, write_agents(tmp_path), api_token="")
    async with TestClient(TestServer(site.app)) as client:
        response = await client.post("/api/v1/send", json={"agent": "CS1001", "to": CUSTOMER},
                                     headers={"Authorization": "Bearer "})
        assert response.status == 404
    assert site.send_card.calls == []
