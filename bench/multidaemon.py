"""Several `ccshortlink run` on one config, one paced AMI peer, one SMSC (bench.active_active).

Each daemon's AMI session gets every frame on one shared timeline, as two clients of one
Asterisk do; the PostgreSQL cluster's CPU is read from /proc.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.daemon_process import DaemonProcess, SmppSettings, write_config
from bench.peers import SmscProcess
from bench.traffic import PacedAmiPeer, Timeline
from tests.support.pgserver import PgServer


class SharedPacedPeer(PacedAmiPeer):
    """PacedAmiPeer for several sessions at once: each gets every frame on the same clock.

    The clock starts once `sessions` logins have happened, so no daemon begins behind."""

    def __init__(self, line: Timeline, banner: bytes, sessions: int) -> None:
        super().__init__(line, banner)
        self.sessions = sessions

    async def _send_frames(self, writer: asyncio.StreamWriter, lock: asyncio.Lock,
                           events: str) -> None:
        await self.wait_for(lambda: self.logins >= self.sessions or self.started_at is not None,
                            timeout=120.0)
        await self._write_paced(writer, lock, 0, self._book_first_hangup)

    def _book_first_hangup(self, first: int, end: int, wall: float) -> None:
        """A call is over when the first session is told of its last Hangup."""
        for p in range(first, end):
            if p in self.line.ends:
                n = self.line.ends[p]
                self.hangup_written[n] = min(self.hangup_written.get(n, wall), wall)


def pg_cpu(server: PgServer) -> float:
    """CPU seconds of the whole cluster: the postmaster, its reaped children and live ones."""
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / tick
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                total += (int(stat[11]) + int(stat[12])) / tick
    return total


@asynccontextmanager
async def running_daemons(folder: Path, smsc: SmscProcess, peer: PacedAmiPeer, *, count: int,
                          smpp: SmppSettings, url: str | None, lease: float | None = None,
                          wrapper: tuple[str, ...] = ()) -> AsyncIterator[list[DaemonProcess]]:
    """bench.daemon_process.running_daemon for one or several daemons on one config, each
    started under `wrapper` (e.g. taskset) when given."""
    daemons: list[DaemonProcess] = []
    try:
        config = write_config(folder, ami_port=await peer.start(),
                              smpp_port=await smsc.start(), smpp=smpp)
        text = re.sub(r'listen = "127\.0\.0\.1:\d+"', 'listen = "127.0.0.1:0"',
                      config.read_text())
        if url is not None:
            extra = f'url = "{url}"\ndaemons = {count}\n'
            if lease is not None:
                extra += f"lease = {lease!r}\n"
            text = re.sub(r'(?m)^path = ".*"\n', extra, text)
        config.write_text(text)
        for n in range(count):
            daemons.append(DaemonProcess(config, folder / f"daemon{n + 1}.jsonl"))
            await daemons[-1].start(*wrapper)
        for daemon in daemons:
            await daemon.wait_ready()
        yield daemons
    finally:
        for daemon in daemons:
            await daemon.stop()
        await peer.stop()
        await smsc.kill()
