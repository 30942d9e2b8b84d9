"""A real PostgreSQL server for the tests: a throwaway cluster (initdb + pg_ctl) on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "ccs"
PASSWORD = "pg-s3cret-Xy7"  # tests check that it never shows in a log or a message


def find_bin() -> Path | None:
    """Debian's postgresql package: /usr/lib/postgresql/<version>/bin, the newest."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgServer:
    """One cluster: `url(dbname)` for a database in it; restart/stop for fault tests."""

    bin: Path
    root: Path
    port: int
    _as_user: list[str]
    durable: bool = False  # PostgreSQL's own defaults: every commit flushed, whole pages logged

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres", *, password: bool = True) -> str:
        auth = f"{USER}:{PASSWORD}" if password else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_user, *args], check=check, capture_output=True,
                              text=True, timeout=120)

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                  + ("" if self.durable else " -c fsync=off -c synchronous_commit=off"
                     " -c full_page_writes=off") + " -c max_connections=200", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """One statement as the cluster's owner, over loopback; its rows, if any."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cursor = conn.execute(statement.encode())
            return cursor.fetchall() if cursor.description else []


def start_server(*, durable: bool = False) -> PgServer:
    """initdb + pg_ctl start on a fresh temporary folder; as root, run as `postgres`
    (initdb refuses root) on a folder that user owns. Tests run it without flushing to disk
    (fsync, synchronous_commit, full_page_writes off); `durable` keeps PostgreSQL's defaults."""
    bin_dir = find_bin()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="ccs-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    root.chmod(0o755)
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")
    server = PgServer(bin_dir, root, _free_port(), as_user, durable)
    server._run(str(bin_dir / "initdb"), "-D", str(server.data), "-U", USER,
                f"--pwfile={pwfile}", "-A", "scram-sha-256", "-E", "UTF8", "--no-sync",
                "--locale=C")
    pwfile.unlink()
    server.start()
    return server


def remove_server(server: PgServer) -> None:
    server.stop("immediate")
    shutil.rmtree(server.root, ignore_errors=True)
