"""Read-only: the live link of an (agent, customer) pair, which the next card would reuse."""

from __future__ import annotations

from pathlib import Path

from ccshortlink.config.database import DatabaseConfig
from ccshortlink.store import StoreError
from ccshortlink.store.choose import open_reports


def live_code(database: Path | DatabaseConfig, agent_id: str, customer_number: str,
              now: float) -> str | None:
    """The code the next card to the pair would carry, or None when a new one would be
    minted (no live link, or no database yet: the daemon has never run)."""
    try:
        reports = open_reports(database if isinstance(database, DatabaseConfig)
                               else DatabaseConfig(path=database))
    except StoreError:
        return None
    with reports:
        rows = reports._rows(  # the package's own report connection, read-only
            "SELECT code FROM links WHERE agent_id = ? AND customer_number = ?"
            " AND expires_at > ? AND revoked_at IS NULL ORDER BY id DESC LIMIT 1",
            (agent_id, customer_number, now))
    return str(rows[0]["code"]) if rows else None
