"""`pip install .` (a wheel, not an editable install) gives a working command with its data."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.configfile import ROOT


def test_wheel_ships_templates_migrations_and_demo_data_and_the_demo_runs(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
         str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("ccshortlink-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("ccshortlink/web/templates/card.html",
                     "ccshortlink/store/migrations/001_initial.sql",
                     "ccshortlink/peers/data/demo-call.ami",
                     "ccshortlink/peers/data/demo-agents.yaml",
                     "ccshortlink/peers/data/avatars/cs1001.svg"):
        assert required in names
    assert any(n.endswith("entry_points.txt") for n in names)

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
         str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    # Run from an empty folder with the installed copy first on the path: no repository files.
    env = dict(os.environ, PYTHONPATH=str(site))
    demo = subprocess.run(
        [sys.executable, "-c", "import ccshortlink, sys; assert 'site' in ccshortlink.__file__, "
         "ccshortlink.__file__; from ccshortlink.cli.main import main; "
         "sys.exit(main(['demo', '--port', '0', '--exit-after', '1']))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "SMS received by the demo SMSC" in demo.stdout
    assert "Open the agent's card:  http://127.0.0.1:" in demo.stdout
    assert "13800138000" not in demo.stdout + demo.stderr
