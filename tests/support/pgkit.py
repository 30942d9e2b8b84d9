"""PostgreSQL for the tests, loaded as a plugin: `pg_server` per session, `pg_url` per test.

Skipped, with the reason, only where no PostgreSQL is installed.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccshortlink.config.database import DatabaseConfig
from ccshortlink.store.choose import AnyStore, open_reports, open_store
from ccshortlink.store.reports import Reports
from tests.support.pgserver import PgServer, find_bin, remove_server, start_server

BACKENDS = ["sqlite", "postgresql"]
_numbers = itertools.count(1)


@contextlib.contextmanager
def throwaway_server() -> Iterator[PgServer]:
    """A cluster started for the caller and removed after; the test is skipped without one."""
    if find_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    server = start_server()
    try:
        yield server
    finally:
        remove_server(server)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with throwaway_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A new, empty database of its own for the test."""
    name = f"t{next(_numbers)}"
    pg_server.sql(f"CREATE DATABASE {name}")
    return pg_server.url(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once on each store."""
    return str(request.param)


def database_for(backend: str, request: pytest.FixtureRequest, path: Path) -> DatabaseConfig:
    """[database] for the backend: the SQLite file at `path`, or a new PostgreSQL database."""
    if backend == "postgresql":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("about SQLite's own file, lock or WAL")
        return DatabaseConfig(path=path, url=str(request.getfixturevalue("pg_url")))
    return DatabaseConfig(path=path)


async def open_backend(backend: str, request: pytest.FixtureRequest, path: Path) -> AnyStore:
    return await open_store(database_for(backend, request, path))


@contextlib.contextmanager
def peek_db(store: Any) -> Iterator[Any]:
    """A second connection to the store's database, as a test's own look at the rows:
    sqlite3 on the file, or psycopg on the server (same `?` SQL, through PgConnection)."""
    database = getattr(store, "database", None)
    if database is not None and database.url:
        import psycopg

        from ccshortlink.store.pg.connection import PgConnection

        with psycopg.connect(database.url, autocommit=True) as conn:
            yield PgConnection(conn)
    else:
        with sqlite3.connect(getattr(store, "path", store)) as db:
            yield db


def reports_for(store: Any) -> Reports:
    """The CLI's read-only reports over the store's database, whichever it is."""
    database = getattr(store, "database", None)
    return open_reports(database) if database is not None else Reports.open(store.path)
