"""The store's connection, migrations, transactions and records (SQLite via aiosqlite)."""

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
from typing import Any, Self, TypeVar

import aiosqlite

from ccshortlink.policy import Decision, SendFacts


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


@dataclass(frozen=True)
class CardRequest:
    """One decision for a batch: the facts are read inside the batch's transaction.

    `judge` and `draft` run on the database thread, so they must be pure (policy, render,
    encode). Without `judge` the record is already final (a skip known before any facts).
    """

    record: DecisionRecord  # outcome and reason are filled in from `judge`
    customer_region: str = ""
    pair_since: float = 0.0
    day_start: float = 0.0
    ttl: float = 0.0
    judge: Callable[[SendFacts], Decision] | None = None
    draft: Callable[[str, float], SmsDraft] | None = None  # (code, not_before) -> the SMS


@dataclass(frozen=True)
class CardResult:
    record: DecisionRecord  # as stored: sent | deferred | skipped, with the reason
    issued: IssuedLink | None


@dataclass(frozen=True)
class SubmittedSms:
    sms_id: int
    message_ids: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class ReceiptRecord:
    message_id: str
    state: str
    error_code: str
    at: float


SCHEMA_VERSION = 2
T = TypeVar("T")


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("ccshortlink") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class StoreBase:
    """One SQLite connection in WAL mode; every use case is one explicit transaction."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        # One connection serves every coroutine: transactions must not interleave.
        self._lock = asyncio.Lock()
        self._checkpointer: sqlite3.Connection | None = None  # the daemon's, see checkpoint

    @classmethod
    async def open(cls, path: Path) -> Self:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
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
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
            await self._db.close()

    async def __aenter__(self) -> Self:
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
        """Run a whole use case on the event loop's own thread, between awaits.

        Each use case is a few indexed statements, well under a millisecond. Handing it to
        another thread cost more than that: SQLite lets go of the interpreter lock at every
        statement, and next to a busy loop the other thread waits out the interpreter's
        switch interval to get it back, a dozen times per use case. Long jobs (retention)
        still go to the connection's thread, through `_tx`. Other processes only write in
        milliseconds (the CLI's opt-out), so waiting out their lock here is as short.
        """
        async with self._lock:
            return work(self._db._conn)  # aiosqlite's sqlite3.Connection (check_same_thread off)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Like `_read`, inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error)."""
        return await self._read(partial(_in_transaction, work))

    async def take_over_checkpoints(self) -> None:
        """Stop the commits that happen to fill the WAL from copying it back (and fsyncing).

        That copy can take tens of milliseconds on a busy disk and, since use cases run on
        the loop's thread, it would stall the loop; `checkpoint` does it from a connection
        and thread of its own instead. For the daemon only: short-lived commands keep
        SQLite's default.
        """
        async with self._lock:
            await self._db.execute("PRAGMA wal_autocheckpoint=0")

    async def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the database file, off the loop and off `_lock`.

        A passive checkpoint runs beside the writer (WAL mode lets it), so decisions are not
        held up while the pages are copied and synced. Returns (frames in the WAL, frames
        now copied); the next commit after a complete copy starts the WAL over.
        """
        if self._checkpointer is None:
            self._checkpointer = await asyncio.to_thread(
                sqlite3.connect, self.path, isolation_level=None, check_same_thread=False)
        row = await asyncio.to_thread(
            lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone(),
            self._checkpointer)
        return (0, 0) if row is None else (int(row[1]), int(row[2]))

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self._read(lambda db: db.execute(sql, params).fetchone())

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self._read(lambda db: db.execute(sql, params).fetchall())

    async def ping(self) -> bool:
        try:
            return await self._one("SELECT 1") is not None
        except (sqlite3.Error, ValueError):
            return False


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
