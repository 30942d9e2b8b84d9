"""What the store's errors mean to its callers, so no one above the store needs sqlite3."""

from __future__ import annotations

import sqlite3
import sys

# Any error a database call can raise, for an `except` above the store (the daemon's
# checkpoints and retention runs log it and try again later); see is_database_error for
# PostgreSQL's too.
DatabaseError = sqlite3.Error

# PostgreSQL's error classes (SQLSTATE's first two characters) that are the server's state,
# not the request's: connection, resources, operator intervention, system, and class 25's
# read-only transaction met on a standby just after a failover (also 40: serialization).
_PG_FAULT_CLASSES = ("08", "25", "40", "53", "54", "55", "57", "58", "XX")


class StoreError(Exception):
    """The database cannot be used (e.g. its schema is newer than this program)."""


def is_db_fault(exc: BaseException) -> bool:
    """A fault of the database itself (locked, disk full, I/O error, damaged file), which a
    later try may get past; not a bug in one request (a constraint, a bad parameter)."""
    if isinstance(exc, StoreError):
        return True
    if _is_pg_error(exc):
        return _pg_fault(exc)
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError,
              sqlite3.NotSupportedError))


def is_transient(exc: BaseException) -> bool:
    """Busy, locked, disk full, I/O error: the same write may well work later (sqlite3's
    OperationalError); a closed store or a batch it cannot take would fail again."""
    if _is_pg_error(exc):
        return _pg_fault(exc)
    return isinstance(exc, sqlite3.OperationalError)


def is_database_error(exc: BaseException) -> bool:
    """Any error of either database's driver (DatabaseError is SQLite's alone)."""
    return isinstance(exc, sqlite3.Error) or _is_pg_error(exc)


def _is_pg_error(exc: BaseException) -> bool:
    # Only a loaded psycopg can have raised one: SQLite users never import it.
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def _pg_fault(exc: BaseException) -> bool:
    """A PostgreSQL error that a later try may get past: the server down or restarting, a
    failover, a full disk, a deadlock; never a constraint or a bug in the SQL."""
    psycopg = sys.modules["psycopg"]
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True  # no connection, a pool timeout, a closed connection
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate[:2] in _PG_FAULT_CLASSES


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock: wait and try again, it is no fault."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
