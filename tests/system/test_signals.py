"""Signals to the real daemon: SIGHUP reloads agents or keeps them; SIGTERM loses nothing."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from tests.support.daemon import (
    RunningDaemon,
    answered_call,
    assert_no_number_or_secret,
    start_peers,
)
from tests.support.smsc_peer import SmscFactory, concat_info

NEW_AGENT = ('  - id: CS1003\n    extensions: ["1003"]\n    name: Lin Wei\n'
             '    phone: "+862088880000,,1003"\n')


async def test_sighup_with_a_good_file_brings_in_the_new_agent(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, [])
    daemon = await RunningDaemon.start(peers.config(tmp_path))
    customer = "+8613912345678"
    try:
        await daemon.wait_event("daemon_ready")
        agents = tmp_path / "agents.yaml"
        agents.write_text(agents.read_text(encoding="utf-8") + NEW_AGENT, encoding="utf-8")
        daemon.send_signal(signal.SIGHUP)
        assert (await daemon.wait_event("reload_done"))["agents"] == 3

        await peers.deliver(answered_call(1, customer, extension="1003"))
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(customer)), timeout=20)
        [text] = peers.sms_to(customer)
        assert "Lin Wei" in text and "CS1003" in text
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    assert_no_number_or_secret(daemon.log, [customer])


async def test_sighup_with_a_broken_file_keeps_the_old_agents_and_connections(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, [])
    daemon = await RunningDaemon.start(peers.config(tmp_path))
    agents = tmp_path / "agents.yaml"
    good = agents.read_text(encoding="utf-8")
    customer = "+8615012345678"
    try:
        await daemon.wait_event("daemon_ready")
        agents.write_text("agents:\n  - id: CS1001\n    extensions: [\"1001\"]\n    name: Ann\n"
                          "   phone: \"+862088880000\"\n", encoding="utf-8")
        daemon.send_signal(signal.SIGHUP)
        failed = await daemon.wait_event("reload_failed")
        assert failed["problems"] == [f"{agents}:5: not valid YAML: expected <block end>,"
                                      " but found '<block mapping start>'"]

        # CS1002's entry renamed to a duplicate of CS1001: nothing of it may be used
        second = good.splitlines().index("  - id: CS1002") + 1
        agents.write_text(good.replace("  - id: CS1002", "  - id: CS1001")
                          .replace("Daniel Chen", "Broken Name"), encoding="utf-8")
        daemon.send_signal(signal.SIGHUP)
        failed = await daemon.wait_event("reload_failed", count=2)
        assert f"{agents}:{second}: duplicate id 'CS1001' (first at {agents}:4)" \
            in failed["problems"]
        assert daemon.process.returncode is None
        assert peers.ami.connections == 1 and len(peers.smsc.binds()) == 1

        # a call to CS1002's extension still gets CS1002's card from the old agents
        await peers.deliver(answered_call(2, customer, extension="1002"))
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(customer)), timeout=20)
        [text] = peers.sms_to(customer)
        assert "Daniel Chen" in text and "CS1002" in text and "Broken" not in text
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    # one SMPP bind for the whole run; the only AMI reconnect is the one the test caused
    assert len(daemon.named("smpp_bound")) == 1 and len(peers.smsc.binds()) == 1
    assert len(daemon.named("ami_connected")) == 2 and len(daemon.named("reload_done")) == 0
    assert_no_number_or_secret(daemon.log, [customer])


BURST = 50
WINDOW = 2


def burst_customer(index: int) -> str:
    return f"+86139{index:08d}"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
async def test_stopped_or_killed_during_a_burst_loses_no_sms(
        tmp_path: Path, smsc_factory: SmscFactory, stop_signal: signal.Signals) -> None:
    calls = [frame for i in range(BURST) for frame in answered_call(i, burst_customer(i))]
    peers = await start_peers(smsc_factory, calls, delay_ms=50)
    # A slow SMSC behind a narrow window and a low rate cap: the burst takes seconds to send.
    config = peers.config(tmp_path, smpp={"port": peers.smsc.port, "window": WINDOW,
                                          "max_per_second": 20})
    first = await RunningDaemon.start(config)
    try:
        await first.wait_event("card_queued", count=BURST, timeout=30)
        await peers.smsc.wait_accepted(5 * WINDOW, timeout=20)  # SMS are on the wire
        accepted_at_sigterm = len(peers.smsc.accepted())
    finally:
        if stop_signal == signal.SIGKILL:
            first.send_signal(signal.SIGKILL)  # no chance to finish anything
        first_code = await first.stop()
    if stop_signal == signal.SIGTERM:
        assert first_code == 0, first.log[-3000:]
        assert first.named("daemon_stopped") and first.named("retention_done")
    else:
        assert first_code == -signal.SIGKILL and not first.named("daemon_stopped")
    db = tmp_path / "state" / "ccshortlink.db"
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM sms GROUP BY status"))
    assert sum(statuses.values()) == BURST
    assert statuses.get("queued", 0) > 0, f"the burst was over before SIGTERM: {statuses}"
    assert accepted_at_sigterm < 2 * BURST

    second = await RunningDaemon.start(config)
    try:
        wanted = {burst_customer(i).lstrip("+") for i in range(BURST)}
        await peers.smsc.wait_for(
            lambda: {m.destination.lstrip("+") for m in peers.smsc.messages() if m.complete}
            >= wanted, timeout=40)
    finally:
        second_code = await second.stop()
        await peers.ami.stop()
    assert second_code == 0, second.log[-3000:]
    messages = [m for m in peers.smsc.messages() if m.complete]
    assert {m.destination.lstrip("+") for m in messages} == wanted
    assert all("CS1001" in m.text for m in messages)
    # at-least-once: an SMS whose submit was cut short may go twice, at most a window's worth
    parts_sent: dict[tuple[str, int], int] = {}
    for event in peers.smsc.accepted():
        info = concat_info(event["esm_class"], bytes.fromhex(event["short_message_hex"]))
        key = (event["destination_addr"], info[2] if info else 1)
        parts_sent[key] = parts_sent.get(key, 0) + 1
    duplicated = {destination for (destination, _), n in parts_sent.items() if n > 1}
    assert len(duplicated) <= WINDOW, duplicated
    assert_no_number_or_secret(first.log + second.log,
                               [burst_customer(i) for i in range(BURST)])
