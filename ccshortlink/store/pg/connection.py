"""A psycopg connection dressed as the part of sqlite3's that the shared use-case SQL uses.

The use cases (store/links.py, outbox.py, replies.py, ...) are plain functions of a
connection, written in SQL both databases run (RETURNING, ON CONFLICT, CASE). What differs
is spelt here once: `?` placeholders become psycopg's `%s`, `BEGIN IMMEDIATE` (SQLite's
write lock) a plain `BEGIN`, and rows answer by name and by position like sqlite3.Row.
"""

from __future__ import annotations

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


class PgConnection:
    """One pooled connection in autocommit mode: transactions are explicit BEGIN/COMMIT."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(translate(sql), tuple(params))

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self.conn.cursor()
        cursor.executemany(translate(sql), params)
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()

    def lock_customer(self, customer_number: str) -> None:
        """store.rows.lock_customer: the number's advisory lock, till the transaction ends."""
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))",
                          (customer_number,))

    def claim_call(self, d: DecisionRecord) -> bool:
        """The call's key, taken in the decision's transaction (store.rows.claim_call).

        Several daemons see the same AMI events and decide the same calls: the one whose
        INSERT lands first decides; the others' INSERT waits for its commit, then finds the
        key and records nothing. The customer's advisory lock makes the facts the decision
        reads (resend window, daily cap) and its SMS one step for every daemon.
        """
        if d.customer_number:
            self.lock_customer(d.customer_number)
        if not d.linkedid:  # a send from the API or the CLI: one daemon got it, no call
            return True
        taken = self.conn.execute(
            "INSERT INTO call_claims (pbx, linkedid, trigger, agent_id, agent_extension)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (d.pbx, d.linkedid, str(d.trigger), d.agent_id,
             d.agent_extension)).fetchone()
        return taken is not None
