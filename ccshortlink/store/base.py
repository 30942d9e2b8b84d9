"""The store's connection and transactions (SQLite via aiosqlite)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiosqlite

from ccshortlink.store import opening
from ccshortlink.store.errors import StoreError, is_busy, is_db_fault, is_transient
from ccshortlink.store.migrate import migrate, migrations
from ccshortlink.store.transactions import in_transaction

__all__ = ["SCHEMA_VERSION", "StoreBase", "StoreError", "is_db_fault"]


SCHEMA_VERSION = 6  # the newest migration's number; numbers may skip one
T = TypeVar("T")
BUSY_TIMEOUT = 0.02  # s: SQLite waits this long for another process's lock, in place
BUSY_WAIT = 10.0  # s: _read tries again, awaiting between tries, for this long in all
WAL_RESTART_PAGES = 4096  # ~16 MiB of WAL: copy the rest under the lock, start it over
WAL_BACKSTOP_PAGES = 65536  # SQLite's own checkpoint, should the daemon's ever stop
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the WAL file is cut back to when started over


class StoreBase:
    """One SQLite connection in WAL mode; every use case is one explicit transaction."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        # One connection serves every coroutine: transactions must not interleave.
        self._lock = asyncio.Lock()
        self._checkpointer: sqlite3.Connection | None = None  # the daemon's, see checkpoint
        self._checkpoint_lock = asyncio.Lock()  # one checkpoint at a time, never after close
        self._closed = False
        # Why the last write failed, until one succeeds: what /healthz reports.
        self.write_failure: str | None = None
        self._failure_is_lock = False
        self._waiting: dict[int, float] = {}  # use cases waiting out a lock: since (monotonic)

    @staticmethod
    def is_fault(exc: BaseException) -> bool:
        """A fault of the database, which a later try may get past (see is_db_fault)."""
        return is_db_fault(exc)

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """Busy, locked, disk full: the same write may work later (see errors.is_transient)."""
        return is_transient(exc)

    def lock_wait(self) -> float:
        """How long (s) the longest-waiting use case has waited for another process's lock."""
        return time.monotonic() - min(self._waiting.values()) if self._waiting else 0.0

    def _note_write(self, exc: BaseException | None, *, probe: bool = False) -> None:
        if exc is None:
            # An empty probe transaction says a lock is gone, not that the disk has room.
            if not probe or self._failure_is_lock:
                self.write_failure = None
        elif is_db_fault(exc):
            self.write_failure = str(exc) or type(exc).__name__
            self._failure_is_lock = isinstance(exc, sqlite3.OperationalError) and is_busy(exc)

    @classmethod
    async def open(cls, path: Path) -> Self:
        """The store at `path`, or a StoreError naming the file and what is wrong with it."""
        path = Path(path)
        opening.check_path(path)
        try:
            db = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise opening.explain(path, exc) from None
        db.row_factory = sqlite3.Row
        store = cls(db, path)
        try:
            opening.check_length(path)
            await store._prepare()
            await _on_its_thread(db, opening.check_writable)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise opening.explain(path, exc) from None
            raise
        return store

    async def _prepare(self) -> None:
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        # Short: use cases run on the loop's thread, and SQLite's busy handler sleeps where it
        # is called. A longer wait for another process's lock is done in _read, by awaiting.
        await self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        # The WAL file is cut back to this size after a checkpoint that emptied it.
        await self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        row = await (await self._db.execute("PRAGMA user_version")).fetchone()
        current = int(row[0]) if row is not None else 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema version {current} is newer than this "
                f"ccshortlink ({SCHEMA_VERSION}); upgrade ccshortlink or restore a backup")
        # Foreign keys are off while migrations run (a pragma a transaction cannot change):
        # a migration may copy a table that others refer to, as SQLite's ALTER TABLE advises.
        for version, sql in migrations():
            if version > current:
                await self._write_in_thread(partial(migrate, version, sql))
        await self._db.execute("PRAGMA foreign_keys=ON")

    async def close(self) -> None:
        async with self._checkpoint_lock, self._lock:
            self._closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
            await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _write_in_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """A long job (migrations, retention) as one transaction on aiosqlite's thread.

        The loop stays free meanwhile. The lock is kept until the job has finished even if
        the caller is cancelled: the connection must never be left mid-transaction for the
        next use case.
        """
        async with self._lock:
            job = asyncio.ensure_future(_on_its_thread(self._db, partial(in_transaction, work)))
            try:
                result = await _outlast_cancellation(job)
            except Exception as exc:
                self._note_write(exc)
                raise
            self._note_write(None)
            return result

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a whole use case on the event loop's own thread, between awaits.

        Each use case is a few indexed statements, well under a millisecond. Handing it to
        another thread cost more than that: SQLite lets go of the interpreter lock at every
        statement, and next to a busy loop the other thread waits out the interpreter's
        switch interval to get it back, a dozen times per use case. Long jobs (retention)
        still go to the connection's thread (`_write_in_thread`). When another process holds
        the write lock (the CLI's opt-out, say), the use case is tried again after an await,
        so the loop is never stalled for longer than BUSY_TIMEOUT.
        """
        waited = 0.0
        token = object()
        try:
            while True:
                async with self._lock:
                    try:
                        return work(_connection(self._db))
                    except sqlite3.OperationalError as exc:
                        if not is_busy(exc) or waited >= BUSY_WAIT:
                            raise
                self._waiting.setdefault(id(token), time.monotonic() - BUSY_TIMEOUT)
                pause = min(0.2, 0.01 + waited / 4)
                await asyncio.sleep(pause)
                waited += pause + BUSY_TIMEOUT
        finally:
            self._waiting.pop(id(token), None)

    async def _write(self, work: Callable[[sqlite3.Connection], T], *, probe: bool = False) -> T:
        """Like `_read`, inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error)."""
        changes = _connection(self._db).total_changes
        try:
            result = await self._read(partial(in_transaction, work))
        except Exception as exc:
            self._note_write(exc)
            raise
        # A transaction that changed nothing (a probe, an empty claim) proves a lock is gone,
        # not that the disk has room again.
        self._note_write(None, probe=probe or _connection(self._db).total_changes == changes)
        return result

    async def probe_write(self) -> None:
        """An empty write transaction: raises while another process holds the write lock."""
        await self._write(lambda db: None, probe=True)

    async def take_over_checkpoints(self) -> None:
        """Keep commits from copying the WAL back themselves (and fsyncing) on the loop.

        That copy can take tens of milliseconds on a busy disk and, since use cases run on
        the loop's thread, it would stall the loop; `checkpoint` does it from a connection
        and thread of its own. SQLite's own checkpoint stays as a backstop at a size the
        daemon's checkpoints never let the WAL reach. For the daemon only: short-lived
        commands keep SQLite's default.
        """
        async with self._lock:
            _connection(self._db).execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")

    async def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the database file, off the loop.

        A passive checkpoint runs beside the writer (WAL mode lets it), so decisions are not
        held up while pages are copied and synced. Under steady load a commit lands during
        every passive copy, so the WAL is never found fully copied and would grow for ever:
        once it holds WAL_RESTART_PAGES, the copy is finished under the store's lock (no
        commit in between) and the next commit writes the WAL from its start again.
        Returns (frames in the WAL, frames copied) as the last checkpoint left them.
        """
        async with self._checkpoint_lock:
            if self._closed:
                return (0, 0)
            if self._checkpointer is None:
                # A reader in another process (the CLI's trace) can hold a TRUNCATE up while
                # the store's lock is taken: give up after half a second, try next time.
                self._checkpointer = await asyncio.to_thread(
                    sqlite3.connect, self.path, timeout=0.5, isolation_level=None,
                    check_same_thread=False)
            checkpointer = self._checkpointer
            frames, copied = await _outlast_cancellation(asyncio.ensure_future(
                asyncio.to_thread(_wal_checkpoint, checkpointer, "PASSIVE")))
            if frames >= WAL_RESTART_PAGES:
                # RESTART, not TRUNCATE: cutting a large file back and syncing it held the
                # lock 25-100 ms here; copying the last second's frames takes 5-11 ms.
                async with self._lock:
                    frames, copied = await _outlast_cancellation(asyncio.ensure_future(
                        asyncio.to_thread(_wal_checkpoint, checkpointer, "RESTART")))
            return frames, copied

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self._read(lambda db: db.execute(sql, params).fetchone())

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self._read(lambda db: db.execute(sql, params).fetchall())

    async def ping(self) -> bool:
        try:
            return await self._one("SELECT 1") is not None
        except (sqlite3.Error, ValueError):
            return False


def _wal_checkpoint(db: sqlite3.Connection, mode: str) -> tuple[int, int]:
    row = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return (0, 0) if row is None else (int(row[1]), int(row[2]))


# aiosqlite's internals, used nowhere else: it has no public way to reach its sqlite3
# connection from the loop's thread (opened with check_same_thread off, so use cases run on it
# there, see _read), nor to run a function of that connection on its own thread.
def _connection(db: aiosqlite.Connection) -> sqlite3.Connection:
    connection: sqlite3.Connection = db._conn
    return connection


async def _on_its_thread(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(connection)` on aiosqlite's thread, queued behind its other calls."""
    result: T = await db._execute(work, _connection(db))  # type: ignore[no-untyped-call]
    return result


async def _outlast_cancellation(job: asyncio.Future[T]) -> T:
    """Await `job`; if cancelled meanwhile, still wait for it to end, then re-raise.

    For work on another thread that holds our connection or lock: cancelling the await
    does not stop the thread, so leaving early would let others in while it runs.
    """
    cancelled = False
    while not job.done():
        try:
            await asyncio.wait([job])
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return job.result()
