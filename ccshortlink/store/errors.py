"""What the store's errors mean to its callers, so no one above the store needs sqlite3."""

from __future__ import annotations

import sqlite3

# Any error a database call can raise, for an `except` above the store (the daemon's
# checkpoints and retention runs log it and try again later).
DatabaseError = sqlite3.Error


class StoreError(Exception):
    """The database cannot be used (e.g. its schema is newer than this program)."""


def is_db_fault(exc: BaseException) -> bool:
    """A fault of the database itself (locked, disk full, I/O error, damaged file), which a
    later try may get past; not a bug in one request (a constraint, a bad parameter)."""
    if isinstance(exc, StoreError):
        return True
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError,
              sqlite3.NotSupportedError))


def is_transient(exc: BaseException) -> bool:
    """Busy, locked, disk full, I/O error: the same write may well work later (sqlite3's
    OperationalError); a closed store or a batch it cannot take would fail again."""
    return isinstance(exc, sqlite3.OperationalError)


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock: wait and try again, it is no fault."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
