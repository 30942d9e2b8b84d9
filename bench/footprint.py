"""Footprint: idle RSS, cold start to READY, and RSS and database bytes per link at 1 M links.

Run: .venv/bin/python -m bench footprint [--links 1000000] [--repeats 3]
The 1 M links are written straight into SQLite with executemany (not through the daemon:
minting them one call at a time would take hours); every link gets the rows that a sent and
delivered card leaves behind (decision, SMS, its UCS-2 part, three SMS events).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.daemon_process import NORMAL_SMPP, DaemonProcess, rss_kib, running_daemon
from bench.peers import SmscProcess
from bench.report import median, table
from bench.traffic import CallBook, PacedAmiPeer, timeline
from ccshortlink.core.links import new_code
from ccshortlink.core.sms import encode_sms
from ccshortlink.store import Store

SETTLE = 3.0  # seconds after READY before RSS is read: lazy imports and first pings done
SMS_TEXT = ("您好，刚才为您服务的是王小梅（工号CS1001）。下次可直接联系TA："
            "https://cs.example.com/{code} 回TD退订")


async def _create_schema(path: Path) -> None:
    async with await Store.open(path):
        pass  # the daemon's own migrations


def fill(path: Path, links: int, batch: int = 20_000) -> float:
    """Write `links` sent-and-delivered links; seconds taken."""
    asyncio.run(_create_schema(path))
    rng = random.Random(links)
    now = time.time()
    started = time.perf_counter()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous=OFF")
        for first in range(1, links + 1, batch):
            ids = range(first, min(first + batch, links + 1))
            link_rows, decision_rows, sms_rows, part_rows, event_rows = [], [], [], [], []
            for link_id in ids:
                code = new_code()
                number = f"+86139{link_id:08d}"
                agent = rng.choice(("CS1001", "CS1002"))
                at = now - rng.uniform(0, 30 * 86400)
                text = SMS_TEXT.format(code=code)
                encoded = encode_sms(text, secrets.randbelow(0x10000))
                link_rows.append((link_id, code, agent, number, "CN", f"1800000000.{link_id}",
                                  at, at + 30 * 86400))
                decision_rows.append((f"1800000000.{link_id}", "hangup", agent, agent[-4:],
                                      number, 42.0, "sent", "", link_id, link_id, at))
                sms_rows.append((link_id, link_id, number, text, encoded.data_coding,
                                 encoded.esm_class, "delivered", 1, at, at + 86400, 0, at, at))
                for part_no, payload in enumerate(encoded.parts):
                    part_rows.append((link_id, part_no, payload, f"{link_id:08x}{part_no}"))
                event_rows += [(link_id, at, "queued", f"{len(encoded.parts)} part(s)"),
                               (link_id, at, "submitted", "message ids ..."),
                               (link_id, at, "receipt", "DELIVRD err:000")]
            db.executemany("INSERT INTO links (id, code, agent_id, customer_number,"
                           " customer_region, linkedid, created_at, expires_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", link_rows)
            db.executemany("INSERT INTO decisions (linkedid, trigger, agent_id, agent_extension,"
                           " customer_number, talk_seconds, outcome, reason, link_id, sms_id,"
                           " decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", decision_rows)
            db.executemany("INSERT INTO sms (id, link_id, destination, text, data_coding,"
                           " esm_class, status, attempts, not_before, expires_at, smpp_status,"
                           " created_at, updated_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           sms_rows)
            db.executemany("INSERT INTO sms_parts (sms_id, part_no, payload, message_id)"
                           " VALUES (?, ?, ?, ?)", part_rows)
            db.executemany("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                           event_rows)
            db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def database_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
               if p.exists())


async def sample_daemon(folder: Path, database: Path, book: CallBook, *, calls: int = 0,
                        pages: int = 0) -> dict[str, float]:
    """Start a daemon on `database`; READY time, idle RSS, and RSS after some traffic."""
    smsc = SmscProcess(folder, receipts=True)
    line = timeline(book.calls(calls) if calls else [], rate=50)
    peer = PacedAmiPeer(line, book.banner)
    found: dict[str, float] = {}
    async with running_daemon(folder, smsc, peer, smpp=NORMAL_SMPP,
                              database=database) as running:
        daemon = running.daemon
        found["ready_s"] = running.ready_s
        await asyncio.sleep(SETTLE)
        found["idle_rss_kib"] = rss_kib(daemon.pid)
        if calls:
            wanted = {c.customer_number for c in line.calls}
            async with asyncio.timeout(120):
                while not wanted <= smsc.by_destination.keys():
                    smsc.poll()
                    await asyncio.sleep(0.2)
        if pages:
            await _open_pages(database, daemon, pages)
        if calls or pages:
            found["busy_rss_kib"] = rss_kib(daemon.pid)
    return found


async def _open_pages(database: Path, daemon: DaemonProcess, pages: int) -> None:
    """Open `pages` random cards, as customers tapping their links would."""
    with sqlite3.connect(database) as db:
        count = db.execute("SELECT MAX(id) FROM links").fetchone()[0] or 0
        rng = random.Random(7)
        codes = [db.execute("SELECT code FROM links WHERE id = ?",
                            (rng.randint(1, count),)).fetchone()[0] for _ in range(pages)]
    port = next(e["port"] for e in daemon.named("web_listening"))
    async with aiohttp.ClientSession() as http:
        for code in codes:
            async with http.get(f"http://127.0.0.1:{port}/{code}") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"card page answered {response.status}")


def run(links: int = 1_000_000, repeats: int = 3) -> list[str]:
    book = CallBook()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ccshortlink-footprint-") as tmp:
        folder = Path(tmp)
        empty = [asyncio.run(sample_daemon(folder, folder / f"empty{n}.db", book))
                 for n in range(repeats)]
        big_db = folder / "big.db"
        fill_seconds = fill(big_db, links)
        size = database_bytes(big_db)
        big = [asyncio.run(sample_daemon(folder, big_db, book, calls=200, pages=500))
               for _ in range(repeats)]
        size_after = database_bytes(big_db)
    rss_empty = median([s["idle_rss_kib"] for s in empty]) / 1024
    rss_big = median([s["idle_rss_kib"] for s in big]) / 1024
    rss_busy = median([s["busy_rss_kib"] for s in big]) / 1024
    rows = [
        ["cold start to READY, empty database", f"{median([s['ready_s'] for s in empty]):.2f} s"],
        [f"cold start to READY, {links:,} links",
         f"{median([s['ready_s'] for s in big]):.2f} s"],
        ["RSS idle, empty database", f"{rss_empty:.1f} MiB"],
        [f"RSS idle, {links:,} links", f"{rss_big:.1f} MiB"],
        [f"RSS after 200 calls + 500 card pages, {links:,} links", f"{rss_busy:.1f} MiB"],
        ["RSS per link ((idle with the links − idle empty) / links)",
         f"{(rss_big - rss_empty) * 1024 * 1024 / links:.2f} bytes"],
        [f"database size, {links:,} links (db + wal + shm)", f"{size / 1024 / 1024:.0f} MiB"],
        ["database bytes per link", f"{size / links:.0f} bytes"],
        [f"database size after the {repeats} traffic run(s)",
         f"{size_after / 1024 / 1024:.0f} MiB"],
    ]
    lines.append(f"medians of {repeats} daemon starts each; database filled in "
                 f"{fill_seconds:.0f} s by direct executemany (see the module docstring)")
    lines += ["", table(["measure", "value"], rows)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    for line in run(args.links, args.repeats):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
