"""The hot PostgreSQL statements reach their rows by key even in the plan made at the start.

psycopg prepares a statement after a few runs, and PostgreSQL then keeps one generic plan for
it, made while a new database's tables are empty. A plan that reads a table whole is cheap
then and grows with every SMS sent until the tables are analysed (seen: message ids took
1.7 ms of the server's time per SMS after 2,000 calls and kept growing).
"""

from __future__ import annotations

import re

import psycopg
import pytest

from ccshortlink.store.pg.base import _migrate
from ccshortlink.store.pg.connection import translate
from ccshortlink.store.pg.outbox import _CLAIM, _SUBMITTED
from ccshortlink.store.pg.receipts import _RECEIPT

HOT = {"message_ids": _SUBMITTED, "claim": _CLAIM, "receipt": _RECEIPT}


@pytest.mark.parametrize("name", sorted(HOT))
def test_the_plan_kept_from_an_empty_database_reads_no_table_whole(pg_url: str,
                                                                    name: str) -> None:
    _migrate(pg_url)
    sql = translate(HOT[name])
    numbers = iter(range(1, sql.count("%s") + 1))
    prepared = re.sub("%s", lambda _: f"${next(numbers)}", sql).replace("%%", "%")
    arity = sql.count("%s")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE hot AS {prepared}".encode())
        plan = "\n".join(row[0] for row in conn.execute(
            ("EXPLAIN EXECUTE hot (" + ", ".join(["NULL"] * arity) + ")").encode()))
    assert "Seq Scan" not in plan, plan
