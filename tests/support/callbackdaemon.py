"""Call-backs through the wired daemon (in-process): the daemon, its desk, and waiting on
what the AMI peer and the SMSC saw."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ccshortlink.app.callbacks import Callbacks
from ccshortlink.config.settings import load_config
from ccshortlink.core.vocab import CallbackState
from ccshortlink.daemon import Daemon
from ccshortlink.ops.logs import get_logger
from ccshortlink.peers.amipeer import AmiPeer, read_transcript
from tests.support.configfile import write_config
from tests.support.daemon import ANSWERED_CALL, answered_call
from tests.support.smsc_peer import Smsc

CUSTOMER = "+8613800138000"
OTHER = "+8613900139000"


@asynccontextmanager
async def daemon_with(tmp_path: Path, smsc: Smsc, peer: AmiPeer, clock: Callable[[], float]
                      = time.time, database: dict[str, object] | None = None,
                      agents: Callable[[str], str] | None = None,
                      **callback: object) -> AsyncIterator[Daemon]:
    """`agents` rewrites the example agents.yaml's text before the daemon reads it."""
    port = await peer.start() if peer._server is None else peer._server.sockets[0].getsockname()[1]
    written = write_config(
        tmp_path, ami={"port": port, "reconnect_max": 0.5}, smpp={"port": smsc.port},
        web={"listen": "127.0.0.1:0", "public_url": "https://cs.example.com",
             "hotline": "4008001234"},
        callback={"enabled": True, **callback}, **({"database": database} if database else {}))
    if agents is not None:
        roster = tmp_path / "agents.yaml"
        roster.write_text(agents(roster.read_text(encoding="utf-8")), encoding="utf-8")
    config = load_config(written)
    daemon = Daemon(config, get_logger(), clock=clock)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), timeout=15)
        yield daemon
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(task, timeout=20) == 0


def desk(daemon: Daemon) -> Callbacks:
    assert daemon.parts.callbacks is not None
    return daemon.parts.callbacks.desk


def code_of(tmp_path: Path, number: str) -> str:
    with sqlite3.connect(tmp_path / "state" / "ccshortlink.db") as db:
        row = db.execute("SELECT code FROM links WHERE customer_number = ?", (number,)).fetchone()
    return str(row[0])


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the peer's and the daemon's own state
            await asyncio.sleep(0.02)


async def state_of(daemon: Daemon, code: str, *wanted: CallbackState,
                   timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            latest = await desk(daemon).latest(code)
            if latest is not None and latest.state in wanted:
                return latest
            await asyncio.sleep(0.02)


async def decisions(daemon: Daemon) -> int:
    """Calls decided (a card sent or skipped): a call-back's own call must not be one."""
    rows = await daemon.parts.cards.store._all("SELECT COUNT(*) FROM decisions")  # type: ignore[attr-defined]
    return int(rows[0][0])


async def cards_sent(smsc: Smsc, count: int) -> None:
    await smsc.wait_for(lambda: len([m for m in smsc.messages() if m.complete]) >= count, 15)


def peer_with(*numbers: str) -> AmiPeer:
    banner, _ = read_transcript(ANSWERED_CALL)
    frames = [f for i, n in enumerate(numbers) for f in answered_call(i, n)]
    return AmiPeer(frames, username="ccshortlink", secret="s3cret", banner=banner,
                   replay_on_reconnect=False)
