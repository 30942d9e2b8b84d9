"""The systemd contract: READY/WATCHDOG/STOPPING from the real daemon, and the unit file."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccshortlink.peers.amipeer import AmiPeer, read_transcript
from tests.support.configfile import ROOT, write_config
from tests.support.daemon import ANSWERED_CALL, RunningDaemon
from tests.support.smsc_peer import SmscFactory

UNIT = ROOT / "systemd" / "ccshortlink.service"
WATCHDOG_USEC = 400_000


class NotifySocket:
    """The service manager's end of $NOTIFY_SOCKET: every datagram with when it arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.received: list[tuple[float, str]] = []

    async def until(self, message: str, count: int = 1, timeout: float = 20.0) -> None:
        """Receive datagrams until `message` (one line of one) has arrived `count` times."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while self.count(message) < count:
                data = await loop.sock_recv(self.sock, 4096)
                self.received.append((loop.time(), data.decode()))

    def count(self, message: str) -> int:
        return sum(1 for _, data in self.received if message in data.splitlines())

    def times(self, message: str) -> list[float]:
        return [at for at, data in self.received if message in data.splitlines()]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    # An AF_UNIX path must fit in 108 bytes; pytest's tmp_path can be longer.
    folder = tmp_path if len(str(tmp_path)) < 80 else Path(tempfile.mkdtemp(prefix="ccs-"))
    notify = NotifySocket(folder / "notify.sock")
    yield notify
    notify.close()
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_ready_only_once_ami_and_smpp_are_up_then_watchdog_then_stopping(
        tmp_path: Path, smsc_factory: SmscFactory, notify_socket: NotifySocket) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    ami_port = free_port()  # Asterisk is not up yet
    config = write_config(tmp_path, ami={"port": ami_port, "reconnect_max": 0.3},
                          smpp={"port": smsc.port})
    daemon = await RunningDaemon.start(config, env={
        "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    banner, _ = read_transcript(ANSWERED_CALL)
    peer = AmiPeer([], username="ccshortlink", secret="s3cret", banner=banner)
    try:
        # alive and watched, but not ready while AMI is down
        await notify_socket.until("WATCHDOG=1", count=3)
        assert notify_socket.count("READY=1") == 0
        assert len(smsc.binds()) == 1 and daemon.named("ami_connected") == []

        await peer.start(port=ami_port)
        await notify_socket.until("READY=1")
        assert peer.logins == 1
        ready = [data for _, data in notify_socket.received if "READY=1" in data.splitlines()]
        assert "STATUS=AMI and SMPP connected" in ready[0].splitlines()

        # systemd kills a service that stays silent for WATCHDOG_USEC: it pings well within it
        after_ready = notify_socket.count("WATCHDOG=1")
        await notify_socket.until("WATCHDOG=1", count=after_ready + 6)
        pings = notify_socket.times("WATCHDOG=1")[after_ready:]
        gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
        assert statistics.median(gaps) < WATCHDOG_USEC / 1e6 * 0.75, gaps

        daemon.send_signal(signal.SIGTERM)
        await notify_socket.until("STOPPING=1")
    finally:
        code = await daemon.stop()
        await peer.stop()
    assert code == 0, daemon.log[-3000:]
    assert notify_socket.count("READY=1") == 1


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The unit as `make install` writes it, pointing at this venv's ccshortlink."""
    executable = Path(sys.executable).parent / "ccshortlink"
    assert executable.is_file(), f"{executable} missing: pip install -e . first"
    unit = tmp_path / "ccshortlink.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(
        "/opt/ccshortlink/bin/ccshortlink", str(executable)), encoding="utf-8")
    return unit


def test_the_unit_file_verifies(installed_unit: Path) -> None:
    result = analyze("verify", str(installed_unit))
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if installed_unit.name in line]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


def test_the_unit_is_hardened_to_ok_or_better(installed_unit: Path) -> None:
    result = analyze("security", "--offline=true", str(installed_unit))
    found = re.search(r"Overall exposure level for ccshortlink\.service: ([\d.]+) (\w+)",
                      result.stdout)
    assert found is not None, result.stdout[-2000:] + result.stderr
    # systemd's scale: PERFECT 0, SAFE < 1, OK < 5, then MEDIUM, EXPOSED, UNSAFE, DANGEROUS
    assert found[2] in ("PERFECT", "SAFE", "OK") and float(found[1]) < 5.0, found[0]
