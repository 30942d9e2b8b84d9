"""`ccshortlink run` as a benchmark drives it: its configuration, process, logs, RSS and CPU."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.peers import SMPP_PASSWORD, SMPP_USER, JsonLines, SmscProcess
from bench.traffic import AMI_SECRET, AMI_USER, ROOT, PacedAmiPeer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SmppSettings:
    """The SMPP knobs a benchmark turns: submit_sm in flight, and parts per second."""

    window: int
    max_per_second: float


# An ordinary operator account for paced runs, and wide open for the max-rate runs. Every SMS
# here is 2 UCS-2 parts, so max_per_second (counted in parts) must exceed 2 x calls/s.
NORMAL_SMPP = SmppSettings(window=50, max_per_second=500.0)
OPEN_SMPP = SmppSettings(window=1000, max_per_second=100_000.0)


def write_config(folder: Path, *, ami_port: int, smpp_port: int, smpp: SmppSettings,
                 database: Path | None = None, reconnect_max: float = 60.0) -> Path:
    """A ccshortlink.toml that sends a card for every answered call, however short or repeated."""
    shutil.copy(ROOT / "etc" / "agents.yaml", folder / "agents.yaml")
    shutil.copytree(ROOT / "etc" / "avatars", folder / "avatars", dirs_exist_ok=True)
    database = database or folder / "state" / "ccshortlink.db"
    text = f"""\
[ami]
host = "127.0.0.1"
port = {ami_port}
username = "{AMI_USER}"
secret = "{AMI_SECRET}"
reconnect_max = {min(reconnect_max, 30.0)!r}

[smpp]
host = "127.0.0.1"
port = {smpp_port}
system_id = "{SMPP_USER}"
password = "{SMPP_PASSWORD}"
source_addr = "95566"
window = {smpp.window}
max_per_second = {smpp.max_per_second!r}
reconnect_max = {float(reconnect_max)!r}

[web]
listen = "127.0.0.1:{free_port()}"
public_url = "https://cs.example.com"

[database]
path = "{database}"

[agents]
file = "agents.yaml"

[policy]
min_talk_seconds = 0
resend_window_hours = 0
daily_cap_per_number = 1000
default_region = "CN"
"""
    path = folder / "ccshortlink.toml"
    path.write_text(text, encoding="utf-8")
    return path


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time used so far by a process (all threads) or by one of its threads."""
    path = Path(f"/proc/{pid}/stat") if thread is None else Path(f"/proc/{pid}/task/{thread}/stat")
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class DaemonProcess:
    """`python -m ccshortlink run` with its JSON log lines going to a file."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.spawned_at = 0.0
        self._lines = JsonLines(log_path)
        self.events: list[dict[str, Any]] = []
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, *wrapper: str) -> None:
        """Spawn it (optionally under a wrapper command such as a profiler)."""
        self._lines = JsonLines(self.log_path)
        self.log_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.spawned_at = datetime.now().timestamp()
            self._process = await asyncio.create_subprocess_exec(
                *wrapper, sys.executable, "-m", "ccshortlink", "run", "-c", str(self.config),
                cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)

    def poll(self) -> list[dict[str, Any]]:
        new = self._lines.read_new()
        self.events.extend(new)
        return new

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    async def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from spawn to the `daemon_ready` line (by the line's own timestamp)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for event in self.poll():
                if event.get("event") == "daemon_ready":
                    stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
                    return stamp.timestamp() - self.spawned_at
            if not self.running:
                break
            await asyncio.sleep(0.01)
        raise RuntimeError(f"the daemon did not become ready; see {self.log_path}")

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait: a graceful stop."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.send_signal(signal.SIGKILL)
                await process.wait()
        self.poll()
        return process.returncode

    async def kill(self) -> None:
        """SIGKILL: no goodbye, no drain, no last transaction."""
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        self.poll()


@dataclass
class Running:
    daemon: DaemonProcess
    ready_s: float  # spawn to READY


@asynccontextmanager
async def running_daemon(folder: Path, smsc: SmscProcess, peer: PacedAmiPeer, *,
                         smpp: SmppSettings, database: Path | None = None
                         ) -> AsyncIterator[Running]:
    """The SMSC, the AMI peer and `ccshortlink run` up to READY; all stopped on the way out."""
    daemon: DaemonProcess | None = None
    try:
        smpp_port = await smsc.start()
        ami_port = await peer.start()
        config = write_config(folder, ami_port=ami_port, smpp_port=smpp_port, smpp=smpp,
                              database=database)
        daemon = DaemonProcess(config, folder / "daemon.jsonl")
        await daemon.start()
        yield Running(daemon, await daemon.wait_ready())
    finally:
        if daemon is not None:
            await daemon.stop()
        await peer.stop()
        await smsc.kill()
