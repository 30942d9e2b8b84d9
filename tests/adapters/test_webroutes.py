"""vCard, agent files, language, page size, /healthz, /metrics and the send API, in-process."""

from __future__ import annotations

import base64
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ccshortlink.core.records import SmsDraft
from ccshortlink.store import Store
from tests.support.cardkit import (
    CODE,
    CUSTOMER,
    DAY,
    Client,
    Site,
    build_site,
    issue,
    page,
    png,
    visits,
    write_agents,
)


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
    # the labels follow the visitor; what the agent wrote stays as written, marked as such
    _, body = await page(client, "/English234", **{"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in body and "一键回拨" in body
    assert '<h1 lang="en">Alice Wang</h1>' in body
    # a browser that names neither: the agent's language, then zh-CN
    _, body = await page(client, "/English234", **{"Accept-Language": "fr-FR"})
    assert '<html lang="en">' in body and "<h1>Alice Wang</h1>" in body
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
