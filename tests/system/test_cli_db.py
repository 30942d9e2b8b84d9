"""The CLI while another process holds the database: a clear refusal, exit 75, nothing changed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.configfile import write_config
from tests.support.daemon import ccshortlink

HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_write_while_another_process_holds_the_lock_is_refused_as_temporary(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = ccshortlink(config, "opt-out", "add", "13800138000")
    assert first.returncode == 0, first.stderr
    db = tmp_path / "state" / "ccshortlink.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        refused = ccshortlink(config, "opt-out", "add", "13900139000")
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 75, refused.stderr
    assert "database unavailable" in refused.stderr and "locked" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert took < 25  # it waited for the lock a while, then said so instead of hanging
    with sqlite3.connect(db) as conn:
        numbers = {n for (n,) in conn.execute("SELECT customer_number FROM opt_outs")}
    assert numbers == {"+8613800138000"}
    again = ccshortlink(config, "opt-out", "add", "13900139000")
    assert again.returncode == 0, again.stderr
