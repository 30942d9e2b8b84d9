"""The PostgreSQL store's pool, transactions and schema: the same use cases as SQLite's."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Self, TypeVar, cast

import psycopg
import psycopg_pool

from ccshortlink.config.database import DatabaseConfig, mask_url
from ccshortlink.store.base import SCHEMA_VERSION, StoreBase, _outlast_cancellation
from ccshortlink.store.errors import StoreError
from ccshortlink.store.migrate import migrations, split_sql
from ccshortlink.store.pg.connection import PgConnection, PgCursor, rows
from ccshortlink.store.transactions import WHOLE_AGAIN, in_transaction

T = TypeVar("T")
POOL_SIZE = 4  # connections per daemon: use cases are a few ms; the loop issues them
POOL_WAIT = 5.0  # s a use case waits for a connection before it is a database fault
CONNECT_TIMEOUT = 5  # s for each host of the URL (libpq's connect_timeout)
STATEMENT_TIMEOUT = 10.0  # s; a use case is a few ms
RETRIES = 5  # a deadlock or a serialization failure between daemons: run the work again
_MIGRATION_LOCK = 0x6363736C  # the advisory lock two daemons starting at once migrate under


class PgBase(StoreBase):
    """A psycopg pool; each use case one transaction on a worker thread, off the loop."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Any], database: DatabaseConfig) -> None:
        self._pool = pool
        self.database = database
        # What logs name (`path` is the SQLite file's name there): never the password.
        self.path = mask_url(database.url)  # type: ignore[assignment]
        self._closed = False
        self.write_failure: str | None = None
        self._failure_is_lock = False
        self._waiting: dict[int, float] = {}

    @classmethod
    async def open(cls, database: DatabaseConfig) -> Self:  # type: ignore[override]
        """Migrate, then open the pool; a wrong password or database is a StoreError."""
        await asyncio.to_thread(_migrate, database.url)
        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            database.url, min_size=1, max_size=POOL_SIZE, open=False, timeout=POOL_WAIT,
            kwargs={"autocommit": True, "row_factory": rows, "cursor_factory": PgCursor,
                    "connect_timeout": CONNECT_TIMEOUT},
            # No check at each checkout (a round trip per use case): a connection found
            # closed is replaced in _run instead.
            configure=_configure, name="ccshortlink")
        await asyncio.to_thread(pool.open, True, POOL_WAIT)
        store = cls(pool, database)
        await store._started()
        return store

    async def _started(self) -> None:
        """After the pool opened (the outbox starts renewing its leases)."""

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._pool.close, 5.0)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction on a pooled connection (on a worker thread)."""
        return self._run_then_read(lambda db: _answer(work(db)))

    def _run_then_read(self, work: Callable[[sqlite3.Connection], Callable[[], T]]) -> T:
        """_run for a `work` that returns how to read its answer: called once the pipeline
        has synced, so the answers of the statements it did not wait for (its last writes)
        come back with the COMMIT's, in the one wait every transaction ends with."""
        strict = False
        for attempt in range(RETRIES):
            db: PgConnection | None = None
            try:
                with self._pool.connection() as conn:
                    with conn.pipeline() as pipeline:
                        db = PgConnection(conn, pipeline, strict=strict)
                        read = in_transaction(work, cast(sqlite3.Connection, db))
                    return read()
            except psycopg.Error as exc:
                if attempt == RETRIES - 1:
                    raise
                if not _run_again(exc, db):
                    if db is None or strict:
                        raise
                    # An SQL error met in pipeline mode may answer any statement sent before
                    # (a batch item's, surfacing at the next item's SAVEPOINT or RELEASE, or at
                    # a fetch): the transaction was rolled back whole, so run it again strict,
                    # each item waited for, and the error is raised where it belongs.
                    strict = True
        raise AssertionError("unreachable")

    def _run_statement(self, work: Callable[[PgConnection], T]) -> T:
        """`work`, one statement, on a pooled connection in autocommit (on a worker thread):
        no BEGIN, COMMIT or pipeline, which cost more of this process's CPU than the
        statement itself. A connection found closed is replaced and the statement sent again:
        the statements run this way may be (a claim's SMS lost that way waits for its lease
        to run out; message ids are the same the second time, and their event is not written
        twice)."""
        for attempt in range(RETRIES):
            db: PgConnection | None = None
            try:
                with self._pool.connection() as conn:
                    db = PgConnection(conn)
                    return work(db)
            except psycopg.Error as exc:
                if attempt == RETRIES - 1 or not _run_again(exc, db):
                    raise
        raise AssertionError("unreachable")

    async def _write_statement(self, work: Callable[[PgConnection], T]) -> T:
        """_write for one statement (_run_statement)."""
        return await self._noted(partial(self._run_statement, work))

    async def _in_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._job(partial(self._run, work))

    async def _job(self, job: Callable[[], T]) -> T:
        """`job` on a worker thread, waited for even when the caller is cancelled."""
        if self._closed:
            raise StoreError("the store is closed")
        return await _outlast_cancellation(asyncio.ensure_future(asyncio.to_thread(job)))

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._in_thread(work)

    async def _write(self, work: Callable[[sqlite3.Connection], T], *, probe: bool = False) -> T:
        return await self._noted(partial(self._run, work))

    async def _write_then_read(self, work: Callable[[sqlite3.Connection], Callable[[], T]]
                               ) -> T:
        """_write for a work that returns how to read its answer (_run_then_read)."""
        return await self._noted(partial(self._run_then_read, work))

    async def _noted(self, job: Callable[[], T]) -> T:
        """A write's job, its success or failure noted for the health check."""
        try:
            result = await self._job(job)
        except Exception as exc:
            self._note_write(exc)
            raise
        self._note_write(None)
        return result

    async def _write_in_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._write(work)

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._read(lambda db: db.execute(sql, params).fetchone())

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._read(lambda db: db.execute(sql, params).fetchall())

    async def probe_write(self) -> None:
        """A write the server refuses while it is down, or a standby (read-only) after a
        failover the pool has not followed yet."""
        await self._write(lambda db: db.execute(
            "UPDATE schema_version SET version = version WHERE false"), probe=True)

    async def take_over_checkpoints(self) -> None:
        """PostgreSQL checkpoints its own WAL."""

    async def checkpoint(self) -> tuple[int, int]:
        return (0, 0)

    async def ping(self) -> bool:
        try:
            return await self._one("SELECT 1") is not None
        except (psycopg.Error, psycopg_pool.PoolTimeout, StoreError):
            return False


def _answer(result: T) -> Callable[[], T]:
    return lambda: result


def _run_again(exc: psycopg.Error, db: PgConnection | None) -> bool:
    """Whether the whole transaction may simply run again: PostgreSQL chose it to give way
    (a deadlock, a serialization failure), or its connection had been closed (the server
    restarted or dropped it while it sat in the pool) before COMMIT was sent, so nothing of
    it was kept. A connection lost during COMMIT leaves the outcome unknown: a fault."""
    if exc.sqlstate in WHOLE_AGAIN:
        return True
    return db is not None and db.conn.broken and not db.committing


def _configure(conn: psycopg.Connection[Any]) -> None:
    # A statement stuck behind another's lock becomes a database fault (retried, reported)
    # instead of a use case that never returns.
    conn.execute(f"SET statement_timeout = {int(STATEMENT_TIMEOUT * 1000)}")


def _migrate(url: str) -> None:
    """Create or migrate the schema, once for all daemons starting at the same time."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.OperationalError as exc:
        if is_login_problem(exc):
            raise StoreError(f"{mask_url(url)}: {first_line(exc)}") from None
        raise
    with conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (0)")
            current = 0 if row is None else int(row[0])
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{mask_url(url)}: database schema version {current} is newer than this "
                    f"ccshortlink ({SCHEMA_VERSION}); upgrade ccshortlink or restore a backup")
            for version, sql in migrations("ccshortlink.store.pg"):
                if version > current:
                    for statement in split_sql(sql):
                        conn.execute(statement.encode())  # bytes: psycopg formats no `%`
                    conn.execute("UPDATE schema_version SET version = %s", (version,))


# What libpq says when the server answered but refused this login or database: a mistake in
# the configuration (exit 78), not an outage (a connection error carries no SQLSTATE).
_LOGIN_PROBLEMS = ("password authentication failed", "no password supplied",
                   "does not exist", "no pg_hba.conf entry")


def is_login_problem(exc: psycopg.OperationalError) -> bool:
    """Bad credentials or no such database: the URL must change, waiting will not help."""
    if (exc.sqlstate or "")[:2] in ("28", "3D"):
        return True
    return any(phrase in str(exc) for phrase in _LOGIN_PROBLEMS)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


__all__ = ["PgBase"]
