"""All SQL: links, the SMS outbox, decisions, visits, ratings, opt-outs (SQLite via aiosqlite)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiosqlite

from ccshortlink.policy import SendFacts


class StoreError(Exception):
    """The database cannot be used (e.g. its schema is newer than this program)."""


@dataclass(frozen=True)
class SmsDraft:
    """An SMS ready for the outbox, already encoded into its parts."""

    text: str
    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]
    not_before: float
    expires_at: float


@dataclass(frozen=True)
class IssuedLink:
    code: str
    link_id: int
    reused: bool
    sms_id: int | None


@dataclass(frozen=True)
class LinkView:
    """What the card page may know about a link: never the customer's number."""

    code: str
    agent_id: str
    status: str  # live | expired | revoked
    created_at: float
    expires_at: float
    customer_region: str
    rating: int | None
    comment: str


@dataclass(frozen=True)
class AgentLiveStats:
    calls_handled: int
    customers_served: int
    rating_count: int
    rating_sum: int


@dataclass(frozen=True)
class RatingView:
    stars: int
    comment: str
    created_at: float


@dataclass(frozen=True)
class OutboxSms:
    """A due SMS claimed for sending."""

    id: int
    destination: str
    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]
    attempts: int
    expires_at: float
    code: str


@dataclass(frozen=True)
class DecisionRecord:
    linkedid: str
    trigger: str
    agent_id: str
    agent_extension: str
    customer_number: str
    talk_seconds: float | None
    outcome: str  # sent | deferred | skipped
    reason: str


SCHEMA_VERSION = 2
T = TypeVar("T")


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("ccshortlink") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    """One SQLite connection in WAL mode; every use case is one explicit transaction."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        # One connection serves every coroutine: transactions must not interleave.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Store:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = sqlite3.Row
        store = cls(db, path)
        try:
            await store._prepare()
        except BaseException:
            await db.close()
            raise
        return store

    async def _prepare(self) -> None:
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute("PRAGMA busy_timeout=5000")
        row = await (await self._db.execute("PRAGMA user_version")).fetchone()
        current = int(row[0])
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema version {current} is newer than this "
                f"ccshortlink ({SCHEMA_VERSION}); upgrade ccshortlink or restore a backup")
        for version, sql in _migrations():
            if version <= current:
                continue
            async with self._tx() as db:
                for statement in _split_sql(sql):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version={version}")

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """A multi-statement transaction driven from the loop (one thread hop per statement)."""
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a whole use case in the connection's own thread: one hop, however many rows.

        Each hop costs a thread switch, and next to a busy event loop the database thread
        may wait out the interpreter's switch interval to get the GIL back: a call that took
        a dozen awaited statements was bounded by those waits, not by SQLite.
        """
        async with self._lock:
            # aiosqlite's worker runs any callable queued this way, in order, on its thread.
            return await self._db._execute(work, self._db._conn)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Like `_read`, inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error)."""
        return await self._read(partial(_in_transaction, work))

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self._read(lambda db: db.execute(sql, params).fetchone())

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self._read(lambda db: db.execute(sql, params).fetchall())

    async def ping(self) -> bool:
        try:
            return await self._one("SELECT 1") is not None
        except (sqlite3.Error, ValueError):
            return False

    # --- links and decisions -------------------------------------------------------------

    async def send_facts(self, agent_id: str, customer_number: str, *, pair_since: float,
                         day_start: float) -> SendFacts:
        def work(db: sqlite3.Connection) -> SendFacts:
            opted = db.execute(
                "SELECT 1 FROM opt_outs WHERE customer_number = ?", (customer_number,)).fetchone()
            last = db.execute(
                "SELECT MAX(s.created_at) FROM sms s JOIN links l ON l.id = s.link_id"
                " WHERE l.agent_id = ? AND l.customer_number = ? AND s.created_at >= ?"
                " AND s.status NOT IN ('failed', 'expired')",
                (agent_id, customer_number, pair_since)).fetchone()
            today = db.execute(
                "SELECT COUNT(*) FROM sms WHERE destination = ? AND created_at >= ?"
                " AND status NOT IN ('failed', 'expired')",
                (customer_number, day_start)).fetchone()
            return SendFacts(opted_out=opted is not None, last_pair_sms_at=last[0],
                             sms_since_day_start=int(today[0]))

        return await self._read(work)

    async def issue_link(self, *, agent_id: str, customer_number: str, linkedid: str, now: float,
                         ttl: float, new_code: Callable[[], str],
                         sms: Callable[[str], SmsDraft] | None = None,
                         customer_region: str = "",
                         decision: DecisionRecord | None = None) -> IssuedLink:
        """Reuse the pair's live link (extending it) or mint one; queue the SMS; one transaction.

        `sms` builds the SMS for the code finally used (a reused link keeps its code); it runs
        on the database thread, so it must be pure (render and encode only).
        """
        def work(db: sqlite3.Connection) -> IssuedLink:
            row = db.execute(
                "SELECT id, code FROM links WHERE agent_id = ? AND customer_number = ?"
                " AND expires_at > ? AND revoked_at IS NULL ORDER BY id DESC LIMIT 1",
                (agent_id, customer_number, now)).fetchone()
            if row is not None:
                link_id, code, reused = int(row["id"]), str(row["code"]), True
                db.execute("UPDATE links SET expires_at = MAX(expires_at, ?) WHERE id = ?",
                           (now + ttl, link_id))
            else:
                reused = False
                for _ in range(10):  # a clash on a 52-bit code is astronomically rare
                    code = new_code()
                    try:
                        cursor = db.execute(
                            "INSERT INTO links (code, agent_id, customer_number, customer_region,"
                            " linkedid, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (code, agent_id, customer_number, customer_region, linkedid, now,
                             now + ttl))
                        break
                    except sqlite3.IntegrityError:
                        continue
                else:
                    raise StoreError("could not mint a unique code after 10 tries")
                link_id = int(cursor.lastrowid or 0)
            sms_id = None
            if sms is not None:
                draft = sms(code)
                cursor = db.execute(
                    "INSERT INTO sms (link_id, destination, text, data_coding, esm_class, status,"
                    " not_before, expires_at, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                    (link_id, customer_number, draft.text, draft.data_coding, draft.esm_class,
                     draft.not_before, draft.expires_at, now, now))
                sms_id = int(cursor.lastrowid or 0)
                db.executemany(
                    "INSERT INTO sms_parts (sms_id, part_no, payload) VALUES (?, ?, ?)",
                    [(sms_id, i, part) for i, part in enumerate(draft.parts)])
                _event(db, sms_id, now, "queued", f"{len(draft.parts)} part(s)")
            if decision is not None:
                _insert_decision(db, decision, now, link_id, sms_id)
            return IssuedLink(code=code, link_id=link_id, reused=reused, sms_id=sms_id)

        return await self._write(work)

    async def record_decision(self, decision: DecisionRecord, now: float) -> None:
        await self._write(lambda db: _insert_decision(db, decision, now, None, None))

    async def revoke_link(self, code: str, now: float) -> bool:
        return await self._write(lambda db: db.execute(
            "UPDATE links SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL",
            (now, code)).rowcount > 0)

    # --- the outbox ----------------------------------------------------------------------

    async def recover_interrupted(self, now: float) -> int:
        """After a crash, SMS left mid-submit go back to the queue (at-least-once delivery)."""
        def work(db: sqlite3.Connection) -> int:
            count = db.execute(
                "UPDATE sms SET status = 'queued', updated_at = ? WHERE status = 'submitting'",
                (now,)).rowcount
            if count:
                db.execute(
                    "INSERT INTO sms_events (sms_id, at, kind, detail) SELECT id, ?, 'requeued',"
                    " 'interrupted by a restart' FROM sms WHERE status = 'queued' AND updated_at = ?",
                    (now, now))
            return count

        return await self._write(work)

    async def claim_due_sms(self, now: float, limit: int) -> list[OutboxSms]:
        def work(db: sqlite3.Connection) -> list[OutboxSms]:
            rows = db.execute(
                "SELECT s.id, s.destination, s.data_coding, s.esm_class, s.attempts, s.expires_at,"
                " l.code FROM sms s JOIN links l ON l.id = s.link_id"
                " WHERE s.status = 'queued' AND s.not_before <= ? ORDER BY s.not_before, s.id"
                " LIMIT ?", (now, limit)).fetchall()
            if not rows:
                return []
            ids = [row["id"] for row in rows]
            marks = ",".join("?" * len(ids))
            parts: dict[int, list[bytes]] = {}
            for sms_id, payload in db.execute(
                    f"SELECT sms_id, payload FROM sms_parts WHERE sms_id IN ({marks})"
                    " ORDER BY sms_id, part_no", ids):
                parts.setdefault(sms_id, []).append(bytes(payload))
            db.execute(f"UPDATE sms SET status = 'submitting', attempts = attempts + 1,"
                       f" updated_at = ? WHERE id IN ({marks})", (now, *ids))
            return [OutboxSms(
                id=row["id"], destination=row["destination"], data_coding=row["data_coding"],
                esm_class=row["esm_class"], parts=tuple(parts.get(row["id"], ())),
                attempts=row["attempts"] + 1, expires_at=row["expires_at"], code=row["code"])
                for row in rows]

        return await self._write(work)

    async def next_due_at(self) -> float | None:
        row = await self._one("SELECT MIN(not_before) FROM sms WHERE status = 'queued'")
        return None if row is None else row[0]

    async def mark_submitted(self, sms_id: int, message_ids: Sequence[str], now: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sms SET status = 'submitted', updated_at = ?, smpp_status = 0"
                       " WHERE id = ?", (now, sms_id))
            db.executemany(
                "UPDATE sms_parts SET message_id = ? WHERE sms_id = ? AND part_no = ?",
                [(mid, sms_id, i) for i, mid in enumerate(message_ids)])
            _event(db, sms_id, now, "submitted", "message ids " + ",".join(message_ids))

        await self._write(work)

    async def mark_failed(self, sms_id: int, now: float, *, status: str, smpp_status: int | None,
                          error: str) -> None:
        """Terminal: `status` is failed or expired."""
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sms SET status = ?, smpp_status = ?, error = ?, updated_at = ?"
                       " WHERE id = ?", (status, smpp_status, error, now, sms_id))
            _event(db, sms_id, now, status, error)

        await self._write(work)

    async def retry_later(self, sms_id: int, now: float, not_before: float, error: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sms SET status = 'queued', not_before = ?, error = ?,"
                       " updated_at = ? WHERE id = ?", (not_before, error, now, sms_id))
            _event(db, sms_id, now, "retry", f"{error}; next try at {not_before:.0f}")

        await self._write(work)

    async def record_receipt(self, message_id: str, state: str, error_code: str,
                             now: float) -> int | None:
        """Apply a delivery receipt; returns the SMS id, or None for an unknown message id."""
        final = {"DELIVRD": "delivered", "UNDELIV": "failed", "EXPIRED": "expired",
                 "REJECTD": "failed", "DELETED": "failed"}.get(state.upper())

        def work(db: sqlite3.Connection) -> int | None:
            row = None
            for candidate in _message_id_forms(message_id):
                row = db.execute(
                    "SELECT sms_id FROM sms_parts WHERE message_id = ?", (candidate,)).fetchone()
                if row is not None:
                    break
            if row is None:
                return None
            sms_id = int(row[0])
            if final is not None:
                db.execute(
                    "UPDATE sms SET status = ?, updated_at = ? WHERE id = ? AND status IN"
                    " ('submitted', 'submitting', 'delivered')", (final, now, sms_id))
            _event(db, sms_id, now, "receipt", f"{message_id} {state} err:{error_code}")
            return sms_id

        return await self._write(work)

    async def sms_status_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) FROM sms GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    # --- opt-outs ------------------------------------------------------------------------

    async def set_opt_out(self, customer_number: str, opted_out: bool, source: str,
                          now: float) -> bool:
        """Returns True when the list changed."""
        def work(db: sqlite3.Connection) -> bool:
            if opted_out:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO opt_outs (customer_number, source, at) VALUES (?, ?, ?)",
                    (customer_number, source, now))
            else:
                cursor = db.execute("DELETE FROM opt_outs WHERE customer_number = ?",
                                    (customer_number,))
            return cursor.rowcount > 0

        return await self._write(work)

    async def opt_outs(self) -> list[tuple[str, str, float]]:
        rows = await self._all("SELECT customer_number, source, at FROM opt_outs ORDER BY at")
        return [(r[0], r[1], r[2]) for r in rows]

    # --- the card page -------------------------------------------------------------------

    async def link_for_page(self, code: str, now: float) -> LinkView | None:
        row = await self._one(
            "SELECT l.code, l.agent_id, l.created_at, l.expires_at, l.revoked_at,"
            " l.customer_region, r.stars, r.comment FROM links l"
            " LEFT JOIN ratings r ON r.link_id = l.id WHERE l.code = ?", (code,))
        if row is None:
            return None
        status = ("revoked" if row["revoked_at"] is not None
                  else "expired" if row["expires_at"] <= now else "live")
        return LinkView(code=row["code"], agent_id=row["agent_id"], status=status,
                        created_at=row["created_at"], expires_at=row["expires_at"],
                        customer_region=row["customer_region"], rating=row["stars"],
                        comment=row["comment"] or "")

    async def record_visit(self, code: str, kind: str, client: str, user_agent: str,
                           now: float) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO visits (link_id, kind, client, user_agent, at)"
            " SELECT id, ?, ?, ?, ? FROM links WHERE code = ?",
            (kind, client, user_agent[:200], now, code)))

    async def rate_link(self, code: str, stars: int, comment: str, now: float) -> None:
        if not 1 <= stars <= 5:
            raise ValueError("stars must be 1..5")
        await self._write(lambda db: db.execute(
            "INSERT INTO ratings (link_id, agent_id, stars, comment, created_at, updated_at)"
            " SELECT id, agent_id, ?, ?, ?, ? FROM links WHERE code = ?"
            " ON CONFLICT (link_id) DO UPDATE SET stars = excluded.stars,"
            " comment = excluded.comment, updated_at = excluded.updated_at",
            (stars, comment, now, now, code)))

    async def agent_live_stats(self, agent_id: str) -> AgentLiveStats:
        def work(db: sqlite3.Connection) -> AgentLiveStats:
            calls = db.execute(
                "SELECT COUNT(DISTINCT linkedid), COUNT(DISTINCT customer_number) FROM decisions"
                " WHERE agent_id = ? AND trigger IN ('hangup', 'agent_complete')",
                (agent_id,)).fetchone()
            ratings = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(stars), 0) FROM ratings WHERE agent_id = ?",
                (agent_id,)).fetchone()
            return AgentLiveStats(calls_handled=int(calls[0]), customers_served=int(calls[1]),
                                  rating_count=int(ratings[0]), rating_sum=int(ratings[1]))

        return await self._read(work)

    async def recent_ratings(self, agent_id: str, limit: int = 5) -> list[RatingView]:
        rows = await self._all(
            "SELECT stars, comment, created_at FROM ratings WHERE agent_id = ? AND comment != ''"
            " ORDER BY updated_at DESC LIMIT ?", (agent_id, limit))
        return [RatingView(stars=r[0], comment=r[1], created_at=r[2]) for r in rows]

    # --- retention ---------------------------------------------------------------------

    async def apply_retention(self, cutoff: float, now: float,
                              anonymise: Callable[[str], str]) -> dict[str, int]:
        """Delete visits, SMS events and parts from before `cutoff`; anonymise older links,
        decisions and SMS (numbers through `anonymise`, texts kept) so counts still add up.

        SMS still waiting to be sent keep their destination and parts however old they are,
        and a live link keeps its number until it expires (the pair reuses it). Returns row
        counts per table; one transaction.
        """
        settled = "status NOT IN ('queued', 'submitting')"
        async with self._tx() as db:
            await db.create_function("ccshortlink_anonymise", 1, anonymise, deterministic=True)
            visits = await db.execute("DELETE FROM visits WHERE at < ?", (cutoff,))
            events = await db.execute("DELETE FROM sms_events WHERE at < ?", (cutoff,))
            parts = await db.execute(
                "DELETE FROM sms_parts WHERE sms_id IN (SELECT id FROM sms WHERE created_at < ?"
                f" AND {settled})", (cutoff,))
            links = await db.execute(
                "UPDATE links SET customer_number = ccshortlink_anonymise(customer_number)"
                " WHERE created_at < ? AND (expires_at <= ? OR revoked_at IS NOT NULL)"
                " AND customer_number != ccshortlink_anonymise(customer_number)", (cutoff, now))
            decisions = await db.execute(
                "UPDATE decisions SET customer_number = ccshortlink_anonymise(customer_number)"
                " WHERE decided_at < ? AND customer_number != ccshortlink_anonymise(customer_number)",
                (cutoff,))
            sms = await db.execute(
                "UPDATE sms SET destination = ccshortlink_anonymise(destination)"
                f" WHERE created_at < ? AND {settled}"
                " AND destination != ccshortlink_anonymise(destination)", (cutoff,))
        return {"visits_deleted": visits.rowcount, "sms_events_deleted": events.rowcount,
                "sms_parts_deleted": parts.rowcount, "links_anonymised": links.rowcount,
                "decisions_anonymised": decisions.rowcount, "sms_anonymised": sms.rowcount}

    # --- visits in batches ---------------------------------------------------------------

    async def record_visits(self, visits: Sequence[tuple[str, str, str, str, float]]) -> int:
        """Many visits in one transaction, each (code, kind, client, user_agent, at).

        What `record_visit` does row by row; visits to codes that no longer exist are
        skipped. Returns the number of rows written. Up to 1000 visits go in as one
        multi-row INSERT: executemany takes the GIL back after every row, and beside a busy
        event loop each of those waits out the interpreter's switch interval (600 rows:
        ~4 ms alone, over a second next to the card server; one statement: ~3 ms either way).
        """
        rows: list[str | float] = []
        for code, kind, client, user_agent, at in visits:
            browser = user_agent[:200]
            if not browser.isascii():  # undecodable header bytes arrive as lone surrogates
                browser = browser.encode("utf-8", "replace").decode("utf-8")
            rows += (code, kind, client, browser, at)
        chunk = 5 * 1000  # parameters per statement; SQLite >= 3.32 allows 32766

        def work(db: sqlite3.Connection) -> int:
            written = 0
            for start in range(0, len(rows), chunk):
                params = rows[start:start + chunk]
                cursor = db.execute(
                    "INSERT INTO visits (link_id, kind, client, user_agent, at)"
                    " SELECT l.id, v.column2, v.column3, v.column4, v.column5 FROM (VALUES "
                    + ",".join(["(?, ?, ?, ?, ?)"] * (len(params) // 5))
                    # CROSS JOIN keeps the batch's order: one probe of links.code per visit
                    + ") AS v CROSS JOIN links AS l ON l.code = v.column1", params)
                written += max(cursor.rowcount, 0)
            return written

        return await self._write(work) if rows else 0


def _in_transaction(work: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def _insert_decision(db: sqlite3.Connection, d: DecisionRecord, now: float,
                     link_id: int | None, sms_id: int | None) -> None:
    db.execute(
        "INSERT INTO decisions (linkedid, trigger, agent_id, agent_extension, customer_number,"
        " talk_seconds, outcome, reason, link_id, sms_id, decided_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (d.linkedid, d.trigger, d.agent_id, d.agent_extension, d.customer_number,
         d.talk_seconds, d.outcome, d.reason, link_id, sms_id, now))


def _event(db: sqlite3.Connection, sms_id: int, now: float, kind: str, detail: str) -> None:
    db.execute("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, ?, ?)",
               (sms_id, now, kind, detail))


def _message_id_forms(message_id: str) -> list[str]:
    """The id as given, then as hex or decimal: many SMSCs answer submit_sm with a hex id but
    write the receipt text's id in decimal (SMPP 3.4 appendix B leaves it open)."""
    text = message_id.strip()
    forms = [message_id, text.lower(), text.upper()]
    if text.isdigit():
        forms += [format(int(text), "x"), format(int(text), "X")]
    try:
        forms.append(str(int(text, 16)))
    except ValueError:
        pass
    return list(dict.fromkeys(forms))


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons in literals)."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

