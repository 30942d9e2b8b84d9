"""Shared fixtures, registered as plugins: none of them is imported by a test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.configfile import write_config

pytest_plugins = [
    "tests.support.pgkit",  # pg_server, pg_url, backend: a throwaway PostgreSQL per session
    "tests.support.smsc_peer",  # smsc_factory: a real SMSC process per test
    "tests.support.cardkit",  # store, site, client: the card site in-process on a real SQLite file
    "tests.support.smppkit",  # connect: an SmppClient on a given port, closed after the test
    "tests.support.outboxkit",  # env: config, store, cards and clock on a real SQLite file
    "tests.support.certs",  # certs: a CA, a server certificate it signed, a stranger CA
    "tests.support.livekit",  # live: a real Asterisk, SIPp phones, the SMSC and the daemon
    "tests.support.chromium",  # browser: a headless Chromium, closed after the test
]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)
