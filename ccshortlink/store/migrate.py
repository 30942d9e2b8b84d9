"""The schema's migrations: numbered SQL files run in order, each in its transaction."""

from __future__ import annotations

import sqlite3
from importlib import resources


def migrations(package: str = "ccshortlink.store") -> list[tuple[int, str]]:
    """(number, SQL) of each file in the package's migrations folder, in order."""
    folder = resources.files(package) / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(version: int, sql: str, db: sqlite3.Connection) -> None:
    for statement in split_sql(sql):
        db.execute(statement)
    db.execute(f"PRAGMA user_version={version}")


def split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons in literals)."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
