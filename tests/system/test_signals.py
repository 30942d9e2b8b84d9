"""Signals to the real daemon: SIGHUP reloads agents or keeps them; SIGTERM loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ccshortlink.peers.amipeer import AmiPeer, read_transcript, rewrite_call

from tests.conftest import write_config
from tests.support.smsc_peer import Smsc, SmscFactory, concat_info
from tests.support.transcripts import FIXTURES

ANSWERED_CALL = FIXTURES / "01-sip-answered-customer-hangup.txt"
NEW_AGENT = ('  - id: CS1003\n    extensions: ["1003"]\n    name: Lin Wei\n'
             '    phone: "+862088880000,,1003"\n')
SECRETS = ("s3cret", '"pw"')


class RunningDaemon:
    """`ccshortlink run` as a child process; its JSON log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, config: Path, env: dict[str, str] | None = None) -> RunningDaemon:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ccshortlink", "run", "-c", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            # stdlib logging from a library is not JSON: kept in `lines` for the log checks
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))
            self._changed.set()
        self._changed.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until `predicate()` holds; re-checked on every log line (and every 0.25 s)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.process.returncode is not None and self._reader.done():
                    raise AssertionError(f"daemon exited {self.process.returncode}:\n"
                                         f"{self.log[-3000:]}")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.25)

    async def wait_event(self, event: str, count: int = 1, timeout: float = 20.0) -> dict[str, Any]:
        await self.wait_for(lambda: len(self.named(event)) >= count, timeout)
        return self.named(event)[count - 1]

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit code once the process and its log have ended."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            await self._reader
        return int(self.process.returncode or 0)


def assert_no_number_or_secret(log: str, numbers: list[str]) -> None:
    for number in numbers:
        assert number.lstrip("+")[2:] not in log, f"{number} appears in the log"
    for secret in SECRETS:
        assert secret not in log


def answered_call(index: int, customer: str, extension: str = "1001") -> list[bytes]:
    _, frames = read_transcript(ANSWERED_CALL)
    return rewrite_call(frames, index=index, customer_number=customer, agent_extension=extension)


@dataclass
class Peers:
    """The daemon's two peers: Asterisk (recorded AMI bytes) and the npm SMSC."""

    ami: AmiPeer
    ami_port: int
    smsc: Smsc

    def config(self, folder: Path, **sections: dict[str, object]) -> Path:
        base: dict[str, dict[str, object]] = {
            "ami": {"port": self.ami_port, "reconnect_max": 0.5}, "smpp": {"port": self.smsc.port}}
        return write_config(folder, **{**base, **sections})

    async def deliver(self, frames: list[bytes]) -> None:
        """Asterisk sends more calls: added to the replay, sent on the daemon's next session."""
        self.ami.frames.extend(frames)
        await self.ami.disconnect_clients()

    def sms_to(self, number: str) -> list[str]:
        return [m.text for m in self.smsc.messages()
                if m.complete and m.destination.lstrip("+") == number.lstrip("+")]


async def start_peers(smsc_factory: SmscFactory, frames: list[bytes], **smsc: Any) -> Peers:
    banner, _ = read_transcript(ANSWERED_CALL)
    # A reconnecting client gets only what was added since: the calls a live Asterisk
    # would send next, never the ones it already sent.
    ami = AmiPeer(frames, username="ccshortlink", secret="s3cret", banner=banner,
                  replay_on_reconnect=False)
    port = await ami.start()
    return Peers(ami, port, await smsc_factory(system_id="ccshortlink", password="pw", **smsc))


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
