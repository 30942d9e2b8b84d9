"""`ccshortlink links` and the links API against the running daemon: revoked means gone, soon."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from ccshortlink.core.privacy import mask_number
from ccshortlink.web.app import LINK_TTL
from tests.support.configfile import write_config
from tests.support.daemon import (
    RunningDaemon,
    answered_call,
    assert_no_number_or_secret,
    ccshortlink,
    start_peers,
)
from tests.support.pgkit import database_for
from tests.support.smsc_peer import SmscFactory

A, B, C = "+8613800138000", "+8613912345678", "+8615012345678"
TOKEN = "links-api-token-0123456789abcdef"
HOTLINE = "400-820-8820"


def code_in(text: str) -> str:
    found = re.search(r"https://cs\.example\.com/(\w+)", text)
    assert found is not None, text
    return found.group(1)


async def status_of(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, headers={"User-Agent": "Mozilla/5.0 (iPhone)"}) as response:
        return response.status, await response.text()


async def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a thread: the daemon's log reader keeps running meanwhile."""
    return await asyncio.to_thread(ccshortlink, config, *args)


async def test_links_through_the_cli_and_the_api_while_the_daemon_serves_them(
        tmp_path: Path, smsc_factory: SmscFactory, backend: str,
        request: pytest.FixtureRequest) -> None:
    calls = answered_call(1, A) + answered_call(2, B) + answered_call(3, C, extension="1002")
    peers = await start_peers(smsc_factory, calls)
    database = database_for(backend, request, tmp_path / "state" / "ccshortlink.db")
    config = peers.config(tmp_path, web={"api_token": TOKEN, "hotline": HOTLINE},
                          database={"url": database.url} if database.url else {})
    daemon = await RunningDaemon.start(config)
    try:
        port = (await daemon.wait_event("web_listening"))["port"]
        base = f"http://127.0.0.1:{port}"
        await peers.smsc.wait_for(lambda: all(peers.sms_to(n) for n in (A, B, C)), timeout=20)
        code_a, code_b, code_c = (code_in(peers.sms_to(n)[0]) for n in (A, B, C))
        async with aiohttp.ClientSession() as http:
            for code in (code_a, code_b):
                assert (await status_of(http, f"{base}/{code}"))[0] == 200  # cached now

            # list: the number in full for who asked by it, masked by agent
            by_number = await cli(config, "links", "list", "--number", "138 0013 8000")
            assert by_number.returncode == 0, by_number.stderr
            assert code_a in by_number.stdout and A in by_number.stdout
            assert code_b not in by_number.stdout
            by_agent = await cli(config, "links", "list", "--agent", "CS1001", "--json")
            listed = json.loads(by_agent.stdout)
            assert {(x["code"], x["customer_number"]) for x in listed} == {
                (code_a, mask_number(A)), (code_b, mask_number(B))}
            assert A not in by_agent.stdout and B not in by_agent.stdout

            extended = await cli(config, "links", "extend", code_a, "--days", "10")
            assert extended.returncode == 0 and f"{code_a} now expires" in extended.stdout

            # revoke from the CLI: the daemon's cache has the card, and lets go within its TTL
            revoked = await cli(config, "links", "revoke", code_a)
            assert revoked.returncode == 0, revoked.stderr
            assert f"revoked {code_a} (CS1001 → {mask_number(A)})" in revoked.stdout
            started = time.monotonic()
            while (await status_of(http, f"{base}/{code_a}"))[0] == 200:
                assert time.monotonic() - started < LINK_TTL + 2, "still served"
                await asyncio.sleep(0.2)
            status, page = await status_of(http, f"{base}/{code_a}")
            assert status == 410 and f'href="tel:{HOTLINE}"' in page and "王小梅" not in page
            again = await cli(config, "links", "revoke", code_a)
            assert again.returncode == 0 and "already revoked" in again.stdout
            refused = await cli(config, "links", "extend", code_a, "--days", "1")
            assert refused.returncode == 1 and "cannot be extended" in refused.stderr

            # revoke over the API: gone on the very next request
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with http.delete(f"{base}/api/v1/links/{code_b}", headers=auth) as response:
                assert response.status == 200
                assert (await response.json())["revoked_now"] is True
            assert (await status_of(http, f"{base}/{code_b}"))[0] == 410
            async with http.get(f"{base}/api/v1/links", params={"number": B, "all": "1"},
                                headers=auth) as response:
                [link] = (await response.json())["links"]
            assert (link["code"], link["status"], link["customer_number"]) == (
                code_b, "revoked", B)

            # every live link of a number at once
            by_c = await cli(config, "links", "revoke", "--number", C)
            assert by_c.returncode == 0
            assert by_c.stdout.startswith(f"revoked 1 live link(s) of {C}: {code_c}")
            none_left = await cli(config, "links", "revoke", "--number", C)
            assert none_left.returncode == 0
            assert none_left.stdout.startswith("revoked 0 live link(s)")
            started = time.monotonic()
            while (await status_of(http, f"{base}/{code_c}"))[0] == 200:
                assert time.monotonic() - started < LINK_TTL + 2
                await asyncio.sleep(0.2)

        shown = await cli(config, "links", "show", code_a)
        assert shown.returncode == 0 and f"Link {code_a}: revoked" in shown.stdout
        assert "extended by cli" in shown.stdout and "revoked by cli" in shown.stdout
        assert A not in shown.stdout
        traced = await cli(config, "trace", A)
        lines = [line[21:] for line in traced.stdout.splitlines() if line[:4].isdigit()]
        assert f"link extended  {code_a} by cli until" in "\n".join(lines)
        assert f"link revoked   {code_a} by cli" in lines
        traced_b = await cli(config, "trace", code_b)
        assert f"link revoked   {code_b} by api" in traced_b.stdout
        assert (await cli(config, "links", "show", "NoSuchLnk")).returncode == 1
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    assert len(daemon.named("api_link_revoked")) == 1
    assert_no_number_or_secret(daemon.log, [A, B, C])


HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_revoke_while_the_database_is_locked_is_refused_as_temporary(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert ccshortlink(config, "opt-out", "add", "13800138000").returncode == 0  # makes the db
    db = tmp_path / "state" / "ccshortlink.db"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO links (code, agent_id, customer_number, created_at, expires_at)"
                     " VALUES ('Lock23456', 'CS1001', ?, ?, ?)", (A, time.time(),
                                                                  time.time() + 86400))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        refused = ccshortlink(config, "links", "revoke", "Lock23456")
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 75, refused.stderr
    assert "database unavailable" in refused.stderr and "Traceback" not in refused.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT revoked_at FROM links").fetchone() == (None,)
    done = ccshortlink(config, "links", "revoke", "Lock23456")
    assert done.returncode == 0 and "revoked Lock23456" in done.stdout
    bad = ccshortlink(config, "links", "extend", "Lock23456", "--days", "0")
    assert bad.returncode == 2 and "days must be" in bad.stderr
