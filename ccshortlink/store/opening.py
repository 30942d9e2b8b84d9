"""Open the database file or say in one sentence what is wrong with it (a StoreError)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ccshortlink.store.errors import StoreError

# What the admin can do about each SQLite result code met while opening.
_ADVICE = {
    "SQLITE_NOTADB": "is not an SQLite database (garbage, or another kind of file);"
                     " move it away or restore a backup",
    "SQLITE_CORRUPT": "is damaged ({error}): restore a backup, or move it away to start empty",
    "SQLITE_CANTOPEN": "cannot be opened ({error}): the file and its folder must be readable"
                       " and writable by this user (SQLite creates {wal} and {shm} beside it)",
    "SQLITE_READONLY": "is read-only ({error}): the file and its folder must be writable by"
                       " this user (SQLite creates {wal} and {shm} beside it)",
    "SQLITE_PERM": "cannot be written ({error}): check its permissions and attributes",
    "SQLITE_FULL": "cannot be written: the disk is full ({error})",
    "SQLITE_IOERR": "cannot be read or written: disk I/O error ({error})",
    "SQLITE_BUSY": "is locked by another process ({error}): finish that transaction first",
}


def check_path(path: Path) -> None:
    """Refuse what is clearly no database file before SQLite looks at it; make its folder."""
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a database file")
    if path.exists() and not path.is_file():
        raise StoreError(f"{path}: is not a regular file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create its folder: {exc.strerror or exc}") from None


def explain(path: Path, exc: sqlite3.Error) -> StoreError:
    """The StoreError an admin reads for an SQLite error met while opening `path`."""
    name = getattr(exc, "sqlite_errorname", None) or (
        "SQLITE_CORRUPT" if "malformed" in str(exc) else "")
    advice = next((text for code, text in _ADVICE.items() if name.startswith(code)),
                  "cannot be used ({error})")
    return StoreError(f"{path}: " + advice.format(
        error=exc, wal=f"{path.name}-wal", shm=f"{path.name}-shm"))


def check_length(path: Path) -> None:
    """A file shorter than its header says was cut off (a copy or a disk that ran out).

    O(1): `PRAGMA quick_check` would find more, but took 65 ms warm and 1.7 s cold on a
    93 MB database, and grows with it, at every start and every `trace`. Damage inside the
    file is still met at run time, where it is a database fault: /healthz says `failing`
    with the reason, and the calls wait in memory for a restored file.
    """
    try:
        with path.open("rb") as file:
            header = file.read(100)
            size = file.seek(0, 2)
    except OSError:
        return  # not there yet, or unreadable: SQLite's own error says which
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return  # an empty new file, or garbage that SQLite itself refuses
    if header[24:28] != header[92:96]:
        return  # the size field is only valid when written by a recent SQLite (file format)
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return  # a checkpoint cut short by a crash: SQLite completes the file from its WAL
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if size < pages * page_size:
        raise sqlite3.DatabaseError(
            f"database disk image is malformed: {size} bytes, its header says"
            f" {pages * page_size}; it was cut off")


def check_writable(db: sqlite3.Connection) -> None:
    """Write page 1 back unchanged: SQLite opens a file it may not write read-only, silently,
    and an empty transaction would not notice."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
            return  # another process writes: a transient lock, which the daemon rides out
        raise
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        db.execute(f"PRAGMA user_version={version}")
        db.execute("COMMIT")
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
