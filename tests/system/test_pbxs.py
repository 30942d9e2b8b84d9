"""Two PBXs into one daemon: the same extension is a different agent on each, and a PBX that
goes away is down alone (two replayed Asterisks, the npm SMSC, the daemon and CLI as processes)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.configfile import TWO_SITE_AGENTS
from tests.support.daemon import (
    RunningDaemon,
    answered_call,
    ccshortlink,
    start_ami_peer,
    start_peers,
)
from tests.support.smsc_peer import SmscFactory

CUSTOMER_A = "+8613800138001"  # called site-a
CUSTOMER_B = "+8613800138002"  # called site-b
CUSTOMER_B2 = "+8613800138003"  # called site-b after the reload


async def healthz(port: int) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status, await response.json()


async def ami_gauges(port: int) -> dict[str, float]:
    """ccshortlink_ami_connected by its `pbx` label, as scraped from /metrics."""
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return {s.labels["pbx"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "ccshortlink_ami_connected"}


async def gauges_become(port: int, wanted: dict[str, float]) -> None:
    async with asyncio.timeout(15):
        while await ami_gauges(port) != wanted:  # noqa: ASYNC110 - polled over HTTP
            await asyncio.sleep(0.1)


async def card_of(sms: str, port: int) -> str:
    """The card page the SMS's link opens."""
    code = re.search(r"https://cs\.example\.com/([A-Za-z0-9]{9})", sms)
    assert code is not None, sms
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/{code[1]}") as response:
        assert response.status == 200
        return await response.text()


async def test_two_pbxs_the_same_extension_two_agents_and_one_down_alone(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    # The same recorded call on both: the same Linkedid and extension 1001 on each PBX.
    peers = await start_peers(smsc_factory, answered_call(0, CUSTOMER_A))
    site_b, site_b_port = await start_ami_peer(answered_call(0, CUSTOMER_B))
    config = peers.config(tmp_path, ami=[
        {"name": "site-a", "host": "127.0.0.1", "port": peers.ami_port,
         "username": "ccshortlink", "secret": "s3cret", "reconnect_max": 0.3},
        {"name": "site-b", "host": "127.0.0.1", "port": site_b_port,
         "username": "ccshortlink", "secret": "s3cret", "reconnect_max": 0.3}])
    (tmp_path / "agents.yaml").write_text(TWO_SITE_AGENTS, encoding="utf-8")
    daemon = await RunningDaemon.start(config)
    try:
        port = (await daemon.wait_event("web_listening"))["port"]
        await daemon.wait_event("daemon_ready")
        await peers.smsc.wait_for(
            lambda: bool(peers.sms_to(CUSTOMER_A) and peers.sms_to(CUSTOMER_B)), timeout=20)
        [to_a], [to_b] = peers.sms_to(CUSTOMER_A), peers.sms_to(CUSTOMER_B)
        assert "Ann Site-A" in to_a and "Bob Site-B" not in to_a
        assert "Bob Site-B" in to_b and "Ann Site-A" not in to_b
        assert "Ann Site-A" in await card_of(to_a, port)
        assert "Bob Site-B" in await card_of(to_b, port)
        # Each PBX's lines say which it is about.
        ended = {e["pbx"]: e for e in daemon.named("call_ended")}
        assert ended.keys() == {"site-a", "site-b"}
        assert ended["site-a"]["linkedid"] == ended["site-b"]["linkedid"]
        assert {e["pbx"] for e in daemon.named("ami_connected")} == {"site-a", "site-b"}
        assert {e["pbx"] for e in daemon.named("card_queued")} == {"site-a", "site-b"}

        # Both up: healthy, and a gauge per PBX (no `default` one).
        assert await healthz(port) == (200, {"ami": "up", "pbxs": {"site-a": "up",
                                                                   "site-b": "up"},
                                             "smpp": "up", "db": "up"})
        assert await ami_gauges(port) == {"site-a": 1, "site-b": 1}

        # SIGHUP: an agents file naming a PBX no [[ami]] table has is refused, the old kept...
        (tmp_path / "agents.yaml").write_text(TWO_SITE_AGENTS.replace("site-b", "site-c"))
        daemon.send_signal(signal.SIGHUP)
        failed = await daemon.wait_event("reload_failed")
        assert any("site-c" in problem for problem in failed["problems"])
        # ...and a good one is taken: site-b's next call names its new agent.
        (tmp_path / "agents.yaml").write_text(TWO_SITE_AGENTS.replace("Bob Site-B", "Bea Site-B"))
        daemon.send_signal(signal.SIGHUP)
        await daemon.wait_event("reload_done")
        site_b.frames.extend(answered_call(1, CUSTOMER_B2))
        await site_b.disconnect_clients()
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(CUSTOMER_B2)), timeout=20)
        assert "Bea Site-B" in peers.sms_to(CUSTOMER_B2)[0]

        # site-b goes away: it alone is down; the daemon still serves (200, degraded).
        await gauges_become(port, {"site-a": 1, "site-b": 1})
        seen = len(daemon.named("ami_disconnected"))
        await site_b.stop()
        await gauges_become(port, {"site-a": 1, "site-b": 0})
        status, health = await healthz(port)
        assert (status, health["ami"], health["pbxs"]) == (
            200, "degraded", {"site-a": "up", "site-b": "down"})
        down = daemon.named("ami_disconnected")[seen:]
        assert down and all(e["pbx"] == "site-b" and e["port"] == site_b_port for e in down)

        # And site-a too: no PBX at all is worth a 503, as with one PBX.
        await peers.ami.stop()
        await gauges_become(port, {"site-a": 0, "site-b": 0})
        status, health = await healthz(port)
        assert (status, health["ami"]) == (503, "down")
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
        await site_b.stop()
    assert code == 0, daemon.log[-3000:]

    # The trace of the one Linkedid tells the two calls apart by PBX.
    linkedid = ended["site-a"]["linkedid"]
    traced = ccshortlink(config, "trace", linkedid)
    assert traced.returncode == 0, traced.stderr
    decisions = [line for line in traced.stdout.splitlines()
                 if line[:4].isdigit() and line[21:29] == "decision"]
    assert len(decisions) == 2
    assert any(f"{linkedid} on site-a, CSA1001 (ext 1001)" in line for line in decisions)
    assert any(f"{linkedid} on site-b, CSB1001 (ext 1001)" in line for line in decisions)
    as_json = json.loads(ccshortlink(config, "trace", CUSTOMER_B, "--json").stdout)
    assert [e["pbx"] for e in as_json["events"] if e["kind"] == "decision"] == ["site-b"]
    assert [link["pbx"] for link in as_json["links"]] == ["site-b"]
