"""[database]: an SQLite file (`path`, the default) or a PostgreSQL server (`url`), never both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ccshortlink.config.reader import Reader

LEASE = 30.0  # s an SMS claimed by one daemon stays its own without the daemon renewing it
_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class DatabaseConfig:
    """Where the store lives: `url` set means PostgreSQL, else the SQLite file at `path`."""

    path: Path
    url: str = ""
    lease: float = LEASE  # PostgreSQL only: see store.pg.outbox
    daemons: int = 1  # how many daemons share the SMSC account's rate cap (see smpp_share)

    @property
    def shown(self) -> str:
        """What logs and messages name: the file, or the URL with its password masked."""
        return mask_url(self.url) if self.url else str(self.path)


def read_database(reader: Reader, base: Path) -> DatabaseConfig:
    """Exactly one of `path` and `url`; a URL must be a libpq postgresql:// URL."""
    has_path, has_url = "path" in reader.table, "url" in reader.table
    path_text = reader.text("path", "ccshortlink.db")
    url = reader.text("url", "").strip()
    lease = reader.number("lease", LEASE, minimum=1, maximum=3600)
    daemons = reader.number("daemons", 1, minimum=1, maximum=64)
    if has_path and has_url:
        reader.problems.append("[database] path and url are both set: path is an SQLite file, "
                               "url a PostgreSQL server; keep one")
    elif not has_path and not has_url:
        reader.problems.append("[database] path is required (an SQLite file), or url for "
                               "PostgreSQL")
    elif has_path and not path_text.strip():
        reader.problems.append("[database] path must not be empty")
    elif has_url and not url.startswith(_SCHEMES):
        reader.problems.append(f"[database] url must be a postgresql:// URL, got "
                               f"{mask_url(url)!r}")
    if daemons != int(daemons):
        reader.problems.append(f"[database] daemons must be a whole number, got {daemons:g}")
    path = Path(path_text).expanduser()
    return DatabaseConfig(path=path if path.is_absolute() else base / path,
                          url=url if has_url else "", lease=lease, daemons=int(daemons))


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***: in the user part and as a parameter."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = ""
    if "@" in netloc:
        users, _, _hosts = netloc.rpartition("@")
        if ":" in users:
            user = users.split(":", 1)[0]
            url = url.replace(users + "@", f"{user}:***@", 1)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)

