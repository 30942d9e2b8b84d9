"""`trace` and `stats` over PostgreSQL: store.reports.Reports on a read-only connection."""

from __future__ import annotations

import sqlite3
from typing import cast

import psycopg

from ccshortlink.config.database import DatabaseConfig, mask_url
from ccshortlink.store.base import SCHEMA_VERSION
from ccshortlink.store.errors import StoreError
from ccshortlink.store.pg.base import CONNECT_TIMEOUT, first_line, is_login_problem
from ccshortlink.store.pg.connection import PgConnection, rows
from ccshortlink.store.reports import Reports


def open_pg_reports(database: DatabaseConfig) -> Reports:
    """Reports whose every transaction is read-only: a report can never change the data."""
    shown = mask_url(database.url)
    try:
        conn = psycopg.connect(database.url, autocommit=True, row_factory=rows,
                               connect_timeout=CONNECT_TIMEOUT)
    except psycopg.OperationalError as exc:
        if is_login_problem(exc):
            raise StoreError(f"{shown}: {first_line(exc)}") from None
        raise
    try:
        conn.execute("SET default_transaction_read_only = on")
        found = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        row = conn.execute("SELECT version FROM schema_version").fetchone() if (
            found and found[0]) else None
    except BaseException:
        conn.close()
        raise
    version = 0 if row is None else int(row[0])
    if not 0 < version <= SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"{shown}: not a database this ccshortlink can read (schema version"
                         f" {version}, this program knows 1 to {SCHEMA_VERSION}; has the"
                         " daemon run yet?)")
    return Reports(cast(sqlite3.Connection, PgConnection(conn)))
