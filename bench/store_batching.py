"""What SQLite costs per call: today's Store vs one thread hop per use case vs batched transactions.

Run: .venv/bin/python -m bench store [--calls 2000] [--repeats 3]

Each variant does, for every call, the database work the daemon does: policy facts, link +
SMS + decision, claim from the outbox, mark submitted (2 message ids), 2 delivery receipts.
  store     the real ccshortlink.store.Store (aiosqlite: one thread hop per statement/fetch)
  per-call  the same SQL, each use case one function run on one SQLite thread (one hop each)
  batched   the same SQL, each stage one hop and one transaction for up to BATCH calls
The last two are estimates for a change to store.py, not product code.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ccshortlink.sms import encode_sms
from ccshortlink.store import DecisionRecord, SmsDraft, Store

from bench.report import median, table

BATCH = 64
TEXT = "您好，刚才为您服务的是王小梅（工号CS1001）。下次可直接联系TA：https://cs.example.com/{code} 回TD退订"


def _draft(code: str, now: float) -> SmsDraft:
    encoded = encode_sms(TEXT.format(code=code), 0x1234)
    return SmsDraft(text=TEXT.format(code=code), data_coding=encoded.data_coding,
                    esm_class=encoded.esm_class, parts=encoded.parts, not_before=now,
                    expires_at=now + 86400)


def _number(n: int) -> str:
    return f"+86139{n:08d}"


async def with_store(path: Path, calls: int) -> int:
    """Today's Store, used as the daemon uses it; returns the thread hops made."""
    async with await Store.open(path) as store:
        hops = 0
        execute = store._db._execute  # counting only: every aiosqlite call goes through it

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal hops
            hops += 1
            return await execute(*args, **kwargs)

        store._db._execute = counted  # type: ignore[method-assign]
        now = time.time()
        for n in range(calls):
            number = _number(n)
            await store.send_facts("CS1001", number, pair_since=now, day_start=now - 3600)
            await store.issue_link(
                agent_id="CS1001", customer_number=number, linkedid=f"1.{n}", now=now,
                ttl=86400, new_code=lambda n=n: f"C{n:08d}", customer_region="CN",
                sms=lambda code: _draft(code, now),
                decision=DecisionRecord(f"1.{n}", "hangup", "CS1001", "1001", number, 3.0,
                                        "sent", ""))
        while claimed := await store.claim_due_sms(now + 1, BATCH):
            await store.next_due_at()
            for sms in claimed:
                ids = [f"{sms.id:x}a", f"{sms.id:x}b"]
                await store.mark_submitted(sms.id, ids, now)
                for message_id in ids:
                    await store.record_receipt(message_id, "DELIVRD", "000", now)
        return hops


class SqlStage:
    """The same statements as store.py, run synchronously on the one SQLite thread."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA synchronous=NORMAL")

    def decide(self, work: list[tuple[int, float]]) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        for n, now in work:
            number = _number(n)
            db.execute("SELECT 1 FROM opt_outs WHERE customer_number = ?", (number,)).fetchone()
            db.execute("SELECT MAX(s.created_at) FROM sms s JOIN links l ON l.id = s.link_id"
                       " WHERE l.agent_id = ? AND l.customer_number = ? AND s.created_at >= ?"
                       " AND s.status NOT IN ('failed', 'expired')",
                       ("CS1001", number, now)).fetchone()
            db.execute("SELECT COUNT(*) FROM sms WHERE destination = ? AND created_at >= ?"
                       " AND status NOT IN ('failed', 'expired')", (number, now - 3600)).fetchone()
            db.execute("SELECT id, code FROM links WHERE agent_id = ? AND customer_number = ?"
                       " AND expires_at > ? AND revoked_at IS NULL ORDER BY id DESC LIMIT 1",
                       ("CS1001", number, now)).fetchone()
            code = f"C{n:08d}"
            link_id = db.execute(
                "INSERT INTO links (code, agent_id, customer_number, customer_region, linkedid,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (code, "CS1001", number, "CN", f"1.{n}", now, now + 86400)).lastrowid
            draft = _draft(code, now)
            sms_id = db.execute(
                "INSERT INTO sms (link_id, destination, text, data_coding, esm_class, status,"
                " not_before, expires_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (link_id, number, draft.text, draft.data_coding, draft.esm_class,
                 draft.not_before, draft.expires_at, now, now)).lastrowid
            db.executemany("INSERT INTO sms_parts (sms_id, part_no, payload) VALUES (?, ?, ?)",
                           [(sms_id, i, part) for i, part in enumerate(draft.parts)])
            db.execute("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                       (sms_id, now, "queued", "2 part(s)"))
            db.execute("INSERT INTO decisions (linkedid, trigger, agent_id, agent_extension,"
                       " customer_number, talk_seconds, outcome, reason, link_id, sms_id,"
                       " decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (f"1.{n}", "hangup", "CS1001", "1001", number, 3.0, "sent", "", link_id,
                        sms_id, now))
        db.execute("COMMIT")

    def claim(self, now: float, limit: int) -> list[int]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute("SELECT s.id FROM sms s JOIN links l ON l.id = s.link_id"
                          " WHERE s.status = 'queued' AND s.not_before <= ?"
                          " ORDER BY s.not_before, s.id LIMIT ?", (now, limit)).fetchall()
        for (sms_id,) in rows:
            db.execute("SELECT payload FROM sms_parts WHERE sms_id = ? ORDER BY part_no",
                       (sms_id,)).fetchall()
            db.execute("UPDATE sms SET status = 'submitting', attempts = attempts + 1,"
                       " updated_at = ? WHERE id = ?", (now, sms_id))
        db.execute("COMMIT")
        return [row[0] for row in rows]

    def submitted(self, sms_ids: list[int], now: float) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        for sms_id in sms_ids:
            db.execute("UPDATE sms SET status = 'submitted', updated_at = ?, smpp_status = 0"
                       " WHERE id = ?", (now, sms_id))
            db.executemany("UPDATE sms_parts SET message_id = ? WHERE sms_id = ? AND part_no = ?",
                           [(f"{sms_id:x}{s}", sms_id, i) for i, s in enumerate("ab")])
            db.execute("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                       (sms_id, now, "submitted", "message ids"))
        db.execute("COMMIT")

    def receipts(self, message_ids: list[str], now: float) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        for message_id in message_ids:
            row = db.execute("SELECT sms_id FROM sms_parts WHERE message_id = ?",
                             (message_id,)).fetchone()
            db.execute("UPDATE sms SET status = 'delivered', updated_at = ? WHERE id = ? AND"
                       " status IN ('submitted', 'submitting', 'delivered')", (now, row[0]))
            db.execute("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                       (row[0], now, "receipt", f"{message_id} DELIVRD err:000"))
        db.execute("COMMIT")


async def with_stages(path: Path, calls: int, batch: int) -> int:
    """The same work through SqlStage, `batch` calls per hop; returns the hops made."""
    async with await Store.open(path):
        pass  # schema by the daemon's own migrations
    stage = SqlStage(path)
    loop = asyncio.get_running_loop()
    hops = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite") as thread:
        async def hop(fn: Any, *args: Any) -> Any:
            nonlocal hops
            hops += 1
            return await loop.run_in_executor(thread, fn, *args)

        now = time.time()
        for first in range(0, calls, batch):
            await hop(stage.decide, [(n, now) for n in range(first, min(first + batch, calls))])
        while claimed := await hop(stage.claim, now + 1, BATCH):
            for start in range(0, len(claimed), batch):
                group = claimed[start:start + batch]
                await hop(stage.submitted, group, now)
                ids = [f"{sms_id:x}{s}" for sms_id in group for s in "ab"]
                for at in range(0, len(ids), batch):
                    await hop(stage.receipts, ids[at:at + batch], now)
        await hop(stage.db.close)
    return hops


def measure(calls: int, repeats: int) -> list[list[str]]:
    variants = {"store (today)": lambda p: with_store(p, calls),
                "per-call (1 hop per use case)": lambda p: with_stages(p, calls, 1),
                f"batched ({BATCH} calls per hop)": lambda p: with_stages(p, calls, BATCH)}
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="ccshortlink-store-") as tmp:
        for turn in range(repeats):
            for name, work in variants.items():  # taking turns: noise hits all alike
                path = Path(tmp) / f"{turn}-{len(results[name])}-{name[:5]}.db"
                wall, cpu = time.perf_counter(), time.process_time()
                hops = asyncio.run(work(path))
                results[name].append((time.perf_counter() - wall, time.process_time() - cpu, hops))
    base = median([r[1] for r in results["store (today)"]])
    rows = []
    for name, runs in results.items():
        cpu = median([r[1] for r in runs])
        rows.append([name, f"{runs[0][2] / calls:.1f}",
                     f"{median([r[0] for r in runs]) * 1000 / calls:.3f}",
                     f"{cpu * 1000 / calls:.3f}", f"{base / cpu:.1f}×"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = measure(args.calls, args.repeats)
    print(f"{args.calls} calls per run, median of {args.repeats}; CPU = this process, all threads")
    print()
    print(table(["variant", "thread hops per call", "wall ms per call", "CPU ms per call",
                 "CPU vs today"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
