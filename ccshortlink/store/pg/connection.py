"""A psycopg connection dressed as the part of sqlite3's that the shared use-case SQL uses.

The use cases (store/links.py, outbox.py, replies.py, ...) are plain functions of a
connection, written in SQL both databases run (RETURNING, ON CONFLICT, CASE). What differs
is spelt here once: `?` placeholders become psycopg's `%s`, `BEGIN IMMEDIATE` (SQLite's
write lock) a plain `BEGIN`, and rows answer by name and by position like sqlite3.Row.

Each transaction runs in psycopg's pipeline mode: a statement whose answer nobody reads
(BEGIN, a savepoint, an INSERT without RETURNING, COMMIT) is sent without waiting for the
server, and the round trip is paid only where an answer is read (a fetch, a rowcount), so a
decision costs a few round trips instead of one per statement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ccshortlink.core.records import DecisionRecord


class Row(tuple[Any, ...]):
    """A result row read by position or by column name, as sqlite3.Row is."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def rows(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    """psycopg's row factory for Row: the names are read once per result."""
    index: dict[str, int] = {}
    for i, column in enumerate(cursor.description or ()):
        index.setdefault(column.name, i)  # the first of two same names wins, as in sqlite3

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._index = index
        return row
    return make


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's spelling of a statement to PostgreSQL's (no `?` or `%` sits in a literal)."""
    sql = sql.replace("%", "%%").replace("?", "%s")
    # SQLite's CROSS JOIN fixes the join order; PostgreSQL takes no ON after a CROSS JOIN.
    return sql.replace("BEGIN IMMEDIATE", "BEGIN").replace(" CROSS JOIN ", " JOIN ")


class PgCursor(psycopg.Cursor[Any]):
    """A cursor whose rowcount waits for its statement's answer, as sqlite3's has it at once
    (in pipeline mode psycopg reads an answer only when a row is fetched)."""

    @property
    def rowcount(self) -> int:
        self._fetch_pipeline()
        return super().rowcount


class PgConnection:
    """One pooled connection in autocommit mode: transactions are explicit BEGIN/COMMIT.

    With `pipeline`, statements are sent as they come and answered when read. A batch's
    items (transactions.each_in_savepoint) are not waited for one by one: an SQL error is
    rare, and when one comes the batch is run again `strict`, where `settle` waits for each
    item's answers so that its error is raised in its own savepoint.
    """

    def __init__(self, conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline | None = None,
                 *, strict: bool = True) -> None:
        self.conn = conn
        self.pipeline = pipeline
        self.strict = strict
        self.committing = False  # COMMIT sent: a lost connection leaves the outcome unknown

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if sql == "COMMIT":
            self.committing = True
        return self.conn.execute(translate(sql), tuple(params))

    def settle(self) -> None:
        """An item of a batch is done: when strict, wait for the answers to every statement
        sent so far and raise the first error."""
        if self.strict and self.pipeline is not None:
            self.pipeline.sync()

    def owns(self, exc: BaseException) -> bool:
        """Whether an error met in an item of a batch is that item's own. Not so for an SQL
        error unless strict: it may answer an earlier item's statement (then the batch is
        rolled back and run again, strict)."""
        return self.strict or not isinstance(exc, psycopg.Error)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self.conn.cursor()
        cursor.executemany(translate(sql), params)
        return cursor

    @property
    def in_transaction(self) -> bool:
        if self.pipeline is not None:
            # After an error the pipeline skips what follows until a sync: sync, so that the
            # ROLLBACK the caller sends next is run.
            with contextlib.suppress(psycopg.Error):
                self.pipeline.sync()
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()

    def lock_customer(self, customer_number: str) -> None:
        """store.rows.lock_customer: the number's advisory lock, till the transaction ends."""
        self.lock_customers([customer_number])

    def lock_customers(self, numbers: Sequence[str]) -> None:
        """store.rows.lock_customers: each number's advisory lock, in the order given, in
        one statement."""
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(n, 7))"
                          " FROM unnest(%s::text[]) AS n", (list(numbers),))

    def claim_call(self, d: DecisionRecord) -> bool:
        """The call's key, taken in the decision's transaction (store.rows.claim_call).

        Several daemons see the same AMI events and decide the same calls: the one whose
        INSERT lands first decides; the others' INSERT waits for its commit, then finds the
        key and records nothing. The customer's advisory lock, taken for the whole batch
        before (store.links.decide_cards, rows.lock_customers), makes the facts the decision
        reads (resend window, daily cap) and its SMS one step for every daemon.
        """
        if not d.linkedid:  # a send from the API or the CLI: one daemon got it, no call
            return True
        return self.execute(CLAIM_CALL, claim_key(d)).fetchone() is not None


# The call's key; answers a row when this transaction took it (PgConnection.claim_call).
CLAIM_CALL = ("INSERT INTO call_claims (pbx, linkedid, trigger, agent_id, agent_extension)"
              " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1")
# The call's key given back by a decision that failed before its writes: another daemon's
# turn. Same parameters (claim_key).
UNCLAIM_CALL = ("DELETE FROM call_claims WHERE pbx = ? AND linkedid = ? AND trigger = ?"
                " AND agent_id = ? AND agent_extension = ?")


def claim_key(d: DecisionRecord) -> tuple[str, str, str, str, str]:
    """CLAIM_CALL's and UNCLAIM_CALL's parameters: the columns of call_claims' primary key."""
    return (d.pbx, d.linkedid, str(d.trigger), d.agent_id, d.agent_extension)
