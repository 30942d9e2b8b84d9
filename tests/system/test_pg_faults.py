"""PostgreSQL faults: the server stopped under a running daemon, and the CLI against it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.daemon import (
    RunningDaemon,
    answered_call,
    assert_no_number_or_secret,
    burst_peer,
    ccshortlink,
    start_peers,
)
from tests.support.pgkit import throwaway_server
from tests.support.pgserver import PASSWORD, PgServer
from tests.support.sharedpg import (
    assert_texted_once_but_for_takeovers,
    every_one_texted,
    rows,
    running_service,
)
from tests.support.smsc_peer import SmscFactory
from tests.system.test_db_faults import health_while

CUSTOMERS = ["+8613900000201", "+8613900000202", "+8613900000203"]


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A cluster of this test's own: it is stopped and started under the daemon."""
    with throwaway_server() as server:
        yield server


def sent(url: str) -> dict[str, int]:
    return dict(rows(url, "SELECT destination, COUNT(*) FROM sms"  # type: ignore[arg-type]
                          " GROUP BY destination"))


async def test_postgresql_stopped_under_the_daemon_loses_no_call(
        tmp_path: Path, own_server: PgServer, smsc_factory: SmscFactory) -> None:
    """While the server is down /healthz says `db: failing` and the calls wait in memory;
    once it is back they are decided, each texted once; the CLI says 75 meanwhile."""
    url = own_server.url()
    peers = await start_peers(smsc_factory, [])
    config = peers.config(tmp_path, database={"url": url})
    daemon = await RunningDaemon.start(config)
    try:
        port = (await daemon.wait_event("web_listening"))["port"]
        await daemon.wait_event("daemon_ready")
        own_server.stop("fast")
        await peers.deliver([f for i, n in enumerate(CUSTOMERS) for f in answered_call(i, n)])
        await daemon.wait_event("call_ended", count=len(CUSTOMERS))
        body = await health_while(port, daemon, "failing", timeout=15)
        assert PASSWORD not in str(body)
        assert not peers.smsc.messages()
        down = ccshortlink(config, "trace", CUSTOMERS[0])
        assert down.returncode == 75, down.stderr
        assert "database unavailable" in down.stderr and PASSWORD not in down.stderr
        own_server.start()
        await peers.smsc.wait_for(lambda: all(peers.sms_to(n) for n in CUSTOMERS), timeout=45)
        await asyncio.sleep(0.5)
        assert {n: len(peers.sms_to(n)) for n in CUSTOMERS} == {n: 1 for n in CUSTOMERS}
        await health_while(port, daemon, "up", timeout=10)
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    assert sent(url) == {n: 1 for n in CUSTOMERS}
    assert daemon.named("db_unavailable") and daemon.named("db_available")
    assert not daemon.named("decision_dropped")
    assert_no_number_or_secret(daemon.log, CUSTOMERS)
    assert PASSWORD not in daemon.log
    trace = ccshortlink(config, "trace", CUSTOMERS[0])
    assert trace.stdout.startswith(f"Customer {CUSTOMERS[0]}: 1 decision(s), 1 link(s), 1 SMS")


async def test_postgresql_restarted_mid_burst_under_two_daemons_loses_no_call(
        tmp_path: Path, own_server: PgServer, smsc_factory: SmscFactory) -> None:
    """Both daemons get every call of a burst; PostgreSQL is restarted a third of the way
    in. They reconnect: every answered call is texted, a duplicate only for an SMS whose
    lease ran out meanwhile (at most a window's worth, each in the SMS's events), and both
    say `db: up` again."""
    numbers = [f"+86135{index:08d}" for index in range(24)]
    peer = burst_peer(numbers, seed=7, frame_delay=0.004)
    url = own_server.url()
    async with running_service(tmp_path, url, smsc_factory, peer, lease=3) as service:
        daemons, smsc = service.daemons, service.smsc
        ports = [(await daemon.wait_event("web_listening"))["port"] for daemon in daemons]
        await smsc.wait_for(lambda: len(smsc.messages()) >= len(numbers) // 3, timeout=60)
        await asyncio.to_thread(own_server.stop, "fast")  # the replay goes on meanwhile
        texted_before = len({m.destination for m in smsc.messages()})
        await asyncio.sleep(1.0)
        # Taken while the server is still down: a daemon may decide in the moment between the
        # server taking connections and pg_ctl returning, and that decision counts too.
        back_at = datetime.now(UTC)
        await asyncio.to_thread(own_server.start)
        await smsc.wait_for(lambda: every_one_texted(service, numbers), timeout=60)
        await peer.wait_done(count=2, timeout=20)
        await asyncio.sleep(1.0)  # time for a duplicate, were there one
        for port, daemon in zip(ports, daemons, strict=True):
            await health_while(port, daemon, "up", timeout=15)
    assert service.codes == [0, 0], [d.log[-3000:] for d in daemons]
    assert texted_before < len(numbers)  # mid-burst indeed
    assert_texted_once_but_for_takeovers(service, url, numbers)
    for daemon in daemons:
        # Each decided calls on the restarted server (queued, or found decided elsewhere),
        # and an outage it saw has ended.
        decided = daemon.named("card_queued") + daemon.named("card_skipped")
        assert any(datetime.fromisoformat(e["timestamp"]) > back_at for e in decided)
        assert len(daemon.named("db_unavailable")) == len(daemon.named("db_available"))
        assert not daemon.named("decision_dropped")
        assert PASSWORD not in daemon.log


def test_a_wrong_password_or_database_is_a_config_error_with_the_password_masked(
        tmp_path: Path, pg_server: PgServer) -> None:
    from tests.support.configfile import write_config

    wrong = pg_server.url().replace(PASSWORD, "not-the-pw-123")
    for url, says in ((wrong, "password authentication failed"),
                      (pg_server.url("no_such_db"), "does not exist")):
        config = write_config(tmp_path, database={"url": url})
        for command in (["trace", CUSTOMERS[0]], ["stats"], ["opt-out", "list"]):
            result = ccshortlink(config, *command)
            assert result.returncode == 78, (command, result.stderr)
            assert says in result.stderr and ":***@" in result.stderr
            assert "not-the-pw-123" not in result.stderr and PASSWORD not in result.stderr
    checked = ccshortlink(write_config(tmp_path, database={"url": pg_server.url()}),
                          "check-config")
    assert checked.returncode == 0, checked.stderr
    assert f"database: PostgreSQL at postgresql://ccs:***@127.0.0.1:{pg_server.port}/postgres" \
        in checked.stdout
    assert PASSWORD not in checked.stdout + checked.stderr


async def test_a_multi_host_url_finds_the_writable_server(tmp_path: Path, pg_server: PgServer,
                                                          pg_url: str) -> None:
    """libpq's own failover list: a host that is down, then the primary."""
    from ccshortlink.config.database import DatabaseConfig
    from ccshortlink.store.choose import open_store
    from tests.support.smppkit import free_port

    server = f"127.0.0.1:{pg_server.port}"
    url = pg_url.replace(server, f"127.0.0.1:{free_port()},{server}") + (
        "?target_session_attrs=read-write&connect_timeout=2")
    async with await open_store(DatabaseConfig(path=tmp_path / "unused.db", url=url)) as store:
        assert await store.ping()
        assert await store.set_opt_out(CUSTOMERS[0], True, "operator", 1.0)
        assert PASSWORD not in str(store.path)
