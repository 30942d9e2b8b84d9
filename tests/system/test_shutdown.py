"""One shutdown budget: SIGTERM stops within [daemon] stop_timeout, a second one at once."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path

from tests.support.daemon import RunningDaemon, answered_call, ccshortlink, start_peers
from tests.support.smsc_peer import SmscFactory

CUSTOMER = "+8613912345678"
NEVER = 600_000  # ms: the SMSC takes each submit_sm and answers none within the test


async def _submitting(daemon: RunningDaemon, folder: Path) -> None:
    """Wait until the SMS is on the wire: claimed by the outbox and handed to the SMSC (which
    reports a submit only once it answers it, so the database says)."""
    await daemon.wait_event("card_queued")

    def status() -> list[str]:
        with sqlite3.connect(folder / "state" / "ccshortlink.db") as db:
            return [row[0] for row in db.execute("SELECT status FROM sms")]

    for _ in range(100):
        if status() == ["submitting"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the SMS was not submitted: {status()}")


async def _stopped_within(daemon: RunningDaemon, seconds: float) -> tuple[int, float]:
    """Wait for the exit; the exit code and how long it took."""
    started = time.monotonic()
    await asyncio.wait_for(daemon.process.wait(), seconds)
    return await daemon.stop(), time.monotonic() - started


def _sms_story(config: Path) -> list[dict[str, object]]:
    result = ccshortlink(config, "trace", CUSTOMER, "--json")
    assert result.returncode == 0, result.stderr
    sms: list[dict[str, object]] = json.loads(result.stdout)["sms"]
    return sms


async def test_a_second_sigterm_while_the_outbox_drains_exits_at_once(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(1, CUSTOMER), delay_ms=NEVER)
    config = peers.config(tmp_path)
    daemon = await RunningDaemon.start(config)
    try:
        await daemon.wait_event("daemon_ready")
        await _submitting(daemon, tmp_path)  # on the wire, never answered
        daemon.send_signal(signal.SIGTERM)
        await daemon.wait_event("outbox_draining")  # 10 s of drain ahead of it
        daemon.send_signal(signal.SIGTERM)
        code, took = await _stopped_within(daemon, 5)
    finally:
        await daemon.stop()
        await peers.ami.stop()
    assert took < 1.5, daemon.log[-3000:]
    assert code == 0, daemon.log[-3000:]  # stopped as asked: nothing decided is lost
    assert daemon.named("stop_forced")[0]["reason"] == "SIGTERM"
    [sms] = _sms_story(config)
    assert sms["status"] in ("queued", "submitting")  # the next start sends it


async def test_one_sigterm_with_a_silent_smsc_stops_within_the_budget(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, answered_call(2, CUSTOMER), delay_ms=NEVER)
    config = peers.config(tmp_path, daemon={"stop_timeout": 3})
    daemon = await RunningDaemon.start(config)
    try:
        await daemon.wait_event("daemon_ready")
        await _submitting(daemon, tmp_path)
        daemon.send_signal(signal.SIGTERM)
        code, took = await _stopped_within(daemon, 10)
    finally:
        await daemon.stop()
        await peers.ami.stop()
    assert took < 3 + 1.0, daemon.log[-3000:]
    assert code == 0, daemon.log[-3000:]
    assert daemon.named("stop_requested")[0]["budget"] == 3
    [sms] = _sms_story(config)
    assert sms["status"] in ("queued", "submitting")  # still in the outbox for the next start
