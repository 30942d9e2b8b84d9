"""The daemon's gauges against real peers, and the shipped dashboard and alerts against /metrics."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ccshortlink import __version__
from tests.support.configfile import ROOT
from tests.support.daemon import RunningDaemon, answered_call, start_peers
from tests.support.smsc_peer import SmscFactory

CUSTOMER = "+8613900000177"
DASHBOARD = ROOT / "etc" / "grafana" / "ccshortlink-dashboard.json"
ALERTS = ROOT / "etc" / "prometheus" / "ccshortlink-alerts.yml"
# A metric name in PromQL: ours all start so; label matchers follow in braces.
METRIC = re.compile(r"\b(ccshortlink_[a-z0-9_]+)\b(?:\{([^}]*)\})?")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> tuple[Samples, str]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return samples, text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def gauge_becomes(port: int, daemon: RunningDaemon, wanted: float, name: str,
                        timeout: float = 15.0, **labels: str) -> None:
    """Scrape until the gauge reads `wanted` (the daemon must still be running)."""
    async with asyncio.timeout(timeout):
        while value((await scrape(port))[0], name, **labels) != wanted:
            assert daemon.process.returncode is None, daemon.log[-3000:]
            await asyncio.sleep(0.1)


async def test_the_link_gauges_follow_the_smsc_and_the_pbx(tmp_path: Path,
                                                           smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, [])
    daemon = await RunningDaemon.start(peers.config(  # reconnecting quickly
        tmp_path, ami={"port": peers.ami_port, "reconnect_max": 0.3},
        smpp={"port": peers.smsc.port, "reconnect_max": 0.3}))
    try:
        port = (await daemon.wait_event("web_listening"))["port"]
        await daemon.wait_event("daemon_ready")
        samples, _ = await scrape(port)
        assert value(samples, "ccshortlink_ami_connected", pbx="default") == 1
        assert value(samples, "ccshortlink_smpp_connected") == 1
        assert value(samples, "ccshortlink_build_info", version=__version__) == 1
        assert value(samples, "ccshortlink_outbox_oldest_due_seconds") == 0

        # The SMSC goes away: the SMPP gauge drops, a call's SMS waits and its age grows.
        await peers.smsc.stop()
        await daemon.wait_event("smpp_disconnected")
        await gauge_becomes(port, daemon, 0, "ccshortlink_smpp_connected")
        await peers.deliver(answered_call(0, CUSTOMER))
        await daemon.wait_event("call_ended")
        await asyncio.sleep(1.5)
        samples, _ = await scrape(port)
        assert value(samples, "ccshortlink_outbox_oldest_due_seconds") >= 1.0
        assert value(samples, "ccshortlink_ami_connected", pbx="default") == 1  # unaffected

        # Back: bound again, the SMS goes out, nothing is waiting any more.
        await peers.smsc.restart()
        await gauge_becomes(port, daemon, 1, "ccshortlink_smpp_connected")
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(CUSTOMER)), timeout=15)
        await daemon.wait_event("sms_submitted")
        await gauge_becomes(port, daemon, 0, "ccshortlink_outbox_oldest_due_seconds")

        # The PBX goes away and comes back on the same port.
        ami_port = peers.ami_port
        await peers.ami.stop()
        await gauge_becomes(port, daemon, 0, "ccshortlink_ami_connected", pbx="default")
        samples, _ = await scrape(port)
        assert value(samples, "ccshortlink_smpp_connected") == 1  # unaffected
        await peers.ami.start(port=ami_port)
        await gauge_becomes(port, daemon, 1, "ccshortlink_ami_connected", pbx="default")
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key in ("expr", "definition") and isinstance(item, str):
                    queries.append(item)
                elif key == "query" and isinstance(item, (str, dict)):
                    walk({"expr": item} if isinstance(item, str) else item)
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return queries


def alert_queries() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    exprs = [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["annotations"]["summary"], rule
    return exprs


def exposed(text: str) -> dict[str, set[str]]:
    """Each sample name /metrics exposes, with the label names it carries (also for a
    labelled family that has no sample yet: its HELP line names it)."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total", "_created"), "info": ("_info",)}.get(family.type, ())
        for name in (family.name, *(family.name + s for s in suffixes)):
            names.setdefault(name, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


async def test_every_metric_the_dashboard_and_the_alerts_name_is_exposed(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    dashboard, alerts = dashboard_queries(), alert_queries()
    titles = {"SMSC", "AMI", "Oldest due SMS", "Outbox by status", "Short links by state",
              "Card visits per minute", "SMS per minute by outcome", "Calls per minute"}
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    assert all(any(t in p["title"] for p in panels) for t in titles)
    named = {m.group(1) for q in dashboard + alerts for m in METRIC.finditer(q)}
    assert {"ccshortlink_smpp_connected", "ccshortlink_ami_connected",
            "ccshortlink_outbox_oldest_due_seconds", "ccshortlink_sms_total"} <= named
    peers = await start_peers(smsc_factory, [])
    daemon = await RunningDaemon.start(peers.config(tmp_path))
    try:
        port = (await daemon.wait_event("web_listening"))["port"]
        await daemon.wait_event("daemon_ready")
        _, text = await scrape(port)
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    names = exposed(text)
    for query in dashboard + alerts:
        for match in METRIC.finditer(query):
            metric, matchers = match.group(1), match.group(2) or ""
            assert metric in names, f"{metric} (in {query!r}) is not on /metrics"
            for label in re.findall(r"([a-z_]+)\s*[=!]~?", matchers):
                assert label == "instance" or label in names[metric], (
                    f"{metric} has no label {label!r} (in {query!r})")
