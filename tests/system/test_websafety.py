"""Safe web defaults on the running daemon: a card sent after a real call, then foreign posts,
gzip and the visitor's language, as a phone's browser (or someone else's page) would ask."""

from __future__ import annotations

import contextlib
import gzip
import re
import sqlite3
from pathlib import Path

import aiohttp

from tests.support.daemon import RunningDaemon, answered_call, start_peers
from tests.support.smsc_peer import SmscFactory

CUSTOMER = "+8613900000188"
TOKEN = "crm-token-123"
PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/126.0 Mobile Safari/537.36")


async def test_the_card_refuses_foreign_posts_and_speaks_the_visitors_language(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(0, CUSTOMER))
    daemon = await RunningDaemon.start(peers.config(tmp_path, web={"api_token": TOKEN}))
    try:
        port = (await daemon.wait_event("web_listening"))["port"]
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(CUSTOMER)), timeout=20)
        found = re.search(r"https://cs\.example\.com/([A-Za-z0-9]+)", peers.sms_to(CUSTOMER)[0])
        assert found is not None, peers.sms_to(CUSTOMER)
        card_url, code = found.group(0), found.group(1)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(auto_decompress=False,
                                         headers={"User-Agent": PHONE}) as http:
            async def rate(stars: str, **headers: str) -> int:
                async with http.post(f"{base}/{code}/rate", data={"stars": stars},
                                     headers=headers, allow_redirects=False) as response:
                    return response.status

            # another site's page posting with the customer's browser, in each guise
            assert await rate("1", Origin="https://evil.example") == 403
            assert await rate("1", Referer="https://evil.example/win-a-prize") == 403
            assert await rate("1") == 403  # neither header: a script
            # the card's own page: an older browser sends only the Referer, a newer its Origin
            assert await rate("4", Referer=f"{card_url}?rated=1") == 303
            assert await rate("5", Origin="https://cs.example.com") == 303
            # the CRM's send API (a bearer token, no browser headers) is not affected
            async with http.post(f"{base}/api/v1/send", json={"agent": "CS1001", "to": CUSTOMER},
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                assert response.status in (202, 422), await response.text()

            async def card(**headers: str) -> tuple[aiohttp.ClientResponse, bytes]:
                async with http.get(f"{base}/{code}", headers=headers) as response:
                    return response, await response.read()

            plain, body = await card(**{"Accept-Encoding": "identity",
                                        "Accept-Language": "en-US,en;q=0.9"})
            assert "Content-Encoding" not in plain.headers
            english = body.decode()
            assert '<html lang="en">' in english and "Call back" in english
            assert "王小梅" in english  # the agent's own words stay as written
            packed, body = await card(**{"Accept-Encoding": "gzip, deflate, br",
                                         "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
            assert packed.headers["Content-Encoding"] == "gzip"
            assert int(packed.headers["Content-Length"]) == len(body)
            chinese = gzip.decompress(body).decode()
            assert '<html lang="zh-CN">' in chinese and "一键回拨" in chinese
            assert len(body) < len(chinese.encode()) // 2
            for response in (plain, packed):
                vary = {v.strip() for v in response.headers["Vary"].split(",")}
                assert {"Accept-Encoding", "Accept-Language"} <= vary
    finally:
        exit_code = await daemon.stop()
        with contextlib.suppress(Exception):
            await peers.ami.stop()
    assert exit_code == 0, daemon.log[-3000:]
    rejected = [e["reason"] for e in daemon.named("rating_rejected")]
    assert rejected == ["foreign_origin", "foreign_referer", "no_origin"]
    with sqlite3.connect(tmp_path / "state" / "ccshortlink.db") as db:
        assert db.execute("SELECT stars FROM ratings").fetchall() == [(5,)]
