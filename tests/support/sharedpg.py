"""Several real daemons on one PostgreSQL, one replayed PBX, one SMSC: their start-up and the
checks the active-active and PostgreSQL-fault tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ccshortlink.peers.amipeer import AmiPeer
from tests.support.configfile import write_config
from tests.support.daemon import RunningDaemon
from tests.support.smsc_peer import Smsc, SmscFactory

WINDOW = 10  # [smpp] window: what a dead daemon (or a lost database) can have in flight


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    """The rows, or [] before a daemon has created the schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            return conn.execute(sql.encode()).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def config_for(folder: Path, url: str, ami_port: int, smsc_port: int,
               **database: object) -> Path:
    return write_config(folder, ami={"port": ami_port, "reconnect_max": 0.5},
                        smpp={"port": smsc_port, "window": WINDOW, "reconnect_max": 0.5},
                        database={"url": url, **database})


@dataclass
class Service:
    """One config, the daemons running it, their PBX and their SMSC."""

    peer: AmiPeer
    smsc: Smsc
    config: Path
    daemons: list[RunningDaemon] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)  # each daemon's exit code, once stopped

    def texted(self) -> list[str]:
        """The number of every whole SMS the SMSC accepted, without '+', once per SMS."""
        return [m.destination.lstrip("+") for m in self.smsc.messages() if m.complete]


@asynccontextmanager
async def running_service(folder: Path, url: str, smsc_factory: SmscFactory, peer: AmiPeer, *,
                          daemons: int = 2, **database: object) -> AsyncIterator[Service]:
    """`daemons` x `ccshortlink run` on one config over `url`; each gets every frame of
    `peer`, as clients of one Asterisk do. On the way out every daemon is stopped (its exit
    code in `codes`), then the PBX."""
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    service = Service(peer, smsc, config_for(folder, url, await peer.start(), smsc.port,
                                             **database))
    try:
        for _ in range(daemons):
            service.daemons.append(await RunningDaemon.start(service.config))
        yield service
    finally:
        service.codes = [await daemon.stop() for daemon in service.daemons]
        await peer.stop()


def every_one_texted(service: Service, numbers: list[str]) -> bool:
    return set(service.texted()) >= {n.lstrip("+") for n in numbers}


def assert_texted_once_but_for_takeovers(service: Service, url: str, numbers: list[str]) -> None:
    """Every call decided and texted once; a duplicate only for an SMS whose lease ran out
    (at most a window's worth), each taken over in the SMS's events."""
    texted = service.texted()
    duplicates = len(texted) - len(set(texted))
    assert set(texted) == {n.lstrip("+") for n in numbers}
    assert duplicates <= WINDOW
    taken = rows(url, "SELECT COUNT(DISTINCT sms_id) FROM sms_events WHERE kind = 'requeued'")
    assert duplicates <= int(taken[0][0])  # type: ignore[call-overload]
    assert rows(url, "SELECT COUNT(*), COUNT(DISTINCT linkedid) FROM decisions"
                     " WHERE outcome = 'sent'") == [(len(numbers), len(numbers))]
