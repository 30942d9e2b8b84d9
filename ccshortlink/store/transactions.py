"""One use case, one transaction: BEGIN IMMEDIATE ... COMMIT, savepoints per item of a batch."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
# PostgreSQL's deadlock and serialization failures: the whole transaction is run again.
WHOLE_AGAIN = ("40001", "40P01")
Item = TypeVar("Item")


def in_transaction(work: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """`work` inside BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        # Some errors (a full disk, say) roll the transaction back already: a ROLLBACK then
        # would fail and hide the error that matters.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def each_in_savepoint(db: sqlite3.Connection, work: Callable[[sqlite3.Connection, Item], T],
                      items: Sequence[Item]) -> list[T | Exception]:
    """`work` for each item inside the caller's transaction; an item that fails is rolled
    back to its savepoint and its error returned in its place, the others are kept."""
    results: list[T | Exception] = []
    for item in items:
        db.execute("SAVEPOINT item")
        try:
            result = work(db, item)
            settle(db)  # PostgreSQL's pipeline: this item's errors are raised in its savepoint
            results.append(result)
        except Exception as exc:
            if not db.in_transaction:
                raise  # SQLite rolled the whole transaction back (a full disk): say why
            if getattr(exc, "sqlstate", None) in WHOLE_AGAIN:
                raise  # PostgreSQL chose this transaction to give way: run it all again
            if not _owns(db, exc):
                raise  # maybe an earlier item's (PostgreSQL's pipeline): run it all again
            db.execute("ROLLBACK TO item")
            results.append(exc)
        db.execute("RELEASE item")
    return results


def settle(db: sqlite3.Connection) -> None:
    """Every statement sent so far answered (PostgreSQL's pipeline, store.pg.connection);
    SQLite answers each statement as it runs."""
    wait = getattr(db, "settle", None)
    if wait is not None:
        wait()


def _owns(db: sqlite3.Connection, exc: Exception) -> bool:
    """Whether the error is the item's own (store.pg.connection.PgConnection.owns); with
    SQLite every statement is answered as it runs, so it always is."""
    owns = getattr(db, "owns", None)
    return True if owns is None else bool(owns(exc))
