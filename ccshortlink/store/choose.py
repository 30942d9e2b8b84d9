"""Open the store [database] names: the SQLite file, or PostgreSQL when a url is set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from ccshortlink.config.database import DatabaseConfig
from ccshortlink.store import Store
from ccshortlink.store.reports import Reports

if TYPE_CHECKING:
    from ccshortlink.store.pg import PgStore

AnyStore = Union[Store, "PgStore"]


async def open_store(database: DatabaseConfig) -> AnyStore:
    """The store, migrated; psycopg is imported only when PostgreSQL is chosen."""
    if not database.url:
        return await Store.open(database.path)
    from ccshortlink.store.pg import PgStore

    return await PgStore.open(database)


def open_reports(database: DatabaseConfig) -> Reports:
    """Read-only reports (trace, stats) over either database."""
    if not database.url:
        return Reports.open(database.path)
    from ccshortlink.store.pg.reports import open_pg_reports

    return open_pg_reports(database)
