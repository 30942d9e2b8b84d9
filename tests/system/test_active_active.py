"""Several daemons, one service: two real daemons on one PostgreSQL, one PBX, one SMSC."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from ccshortlink.peers.amipeer import AmiPeer, read_transcript
from ccshortlink.store.rows import DECIDED_ELSEWHERE
from tests.support.daemon import (
    ANSWERED_CALL,
    RunningDaemon,
    answered_call,
    burst_peer,
    ccshortlink,
)
from tests.support.pgserver import PASSWORD
from tests.support.sharedpg import (
    assert_texted_once_but_for_takeovers,
    config_for,
    every_one_texted,
    rows,
    running_service,
)
from tests.support.smppkit import free_port
from tests.support.smsc_peer import SmscFactory
from tests.support.transcripts import FIXTURES

CALLS = 40


async def test_two_daemons_send_exactly_one_sms_per_answered_call(
        tmp_path: Path, pg_url: str, smsc_factory: SmscFactory) -> None:
    """Both daemons get every AMI event of 40 interleaved calls (answered, abandoned, queue):
    the database decides each call once, whichever daemon comes first."""
    numbers = [f"+86137{index:08d}" for index in range(CALLS)]
    expected = {n.lstrip("+") for index, n in enumerate(numbers) if index % 3 != 1}
    peer = burst_peer(numbers, seed=14, sources=(
        ANSWERED_CALL, FIXTURES / "03-sip-ring-no-answer-abandon.txt",
        FIXTURES / "04-queue-sip-members-answered.txt"))
    async with running_service(tmp_path, pg_url, smsc_factory, peer) as service:
        await service.smsc.wait_for(lambda: len(service.texted()) >= len(expected), timeout=60)
        await peer.wait_done(count=2, timeout=20)
        await asyncio.sleep(1.5)  # time for a duplicate, were there one
    assert service.codes == [0, 0]
    assert sorted(service.texted()) == sorted(expected)  # each answered call once, no other
    assert rows(pg_url, "SELECT COUNT(*), COUNT(DISTINCT linkedid) FROM decisions"
                        " WHERE outcome = 'sent'") == [(len(expected), len(expected))]
    daemons = service.daemons
    queued = [e for d in daemons for e in d.named("card_queued")]
    elsewhere = [e for d in daemons for e in d.named("card_skipped")
                 if e.get("reason") == DECIDED_ELSEWHERE]
    assert len(queued) == len(expected)
    assert {e["linkedid"] for e in queued} <= {e["linkedid"] for e in elsewhere}
    for daemon in daemons:
        assert PASSWORD not in daemon.log


async def test_a_killed_daemons_claimed_sms_are_sent_by_the_other_after_its_lease(
        tmp_path: Path, pg_url: str, smsc_factory: SmscFactory) -> None:
    """The SMSC is down while daemon A claims three SMS; A is SIGKILLed. Daemon B, started
    once the SMSC is back, takes them over when A's lease runs out and sends each once."""
    numbers = [f"+8613900000{n:03d}" for n in range(3)]
    frames = [f for n, number in enumerate(numbers) for f in answered_call(n, number)]
    banner, _ = read_transcript(ANSWERED_CALL)
    peer = AmiPeer(frames, username="ccshortlink", secret="s3cret", banner=banner)
    smsc_port = free_port()  # nothing listens there yet
    config = config_for(tmp_path, pg_url, await peer.start(), smsc_port, lease=3)
    first = await RunningDaemon.start(config)
    try:
        await first.wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM sms WHERE status ="
                                                  " 'submitting'") == [(3,)], timeout=30)
        first.send_signal(signal.SIGKILL)
        await first.process.wait()
        smsc = await smsc_factory(system_id="ccshortlink", password="pw", port=smsc_port)
        second = await RunningDaemon.start(config)
        try:
            await smsc.wait_for(lambda: len([m for m in smsc.messages() if m.complete]) >= 3,
                                timeout=30)
            await asyncio.sleep(1.0)
        finally:
            assert await second.stop() == 0
    finally:
        await first.stop()
        await peer.stop()
    assert sorted(m.destination.lstrip("+") for m in smsc.messages() if m.complete) == sorted(
        n.lstrip("+") for n in numbers)
    # B saw the same calls again on its AMI session: decided already, nothing sent twice
    assert len(second.named("card_queued")) == 0
    taken = rows(pg_url, "SELECT detail FROM sms_events WHERE kind = 'requeued'")
    assert len(taken) == 3 and all("lease of" in str(r[0]) for r in taken)
    trace = ccshortlink(config, "trace", numbers[0])
    assert trace.returncode == 0, trace.stderr
    assert "taken over by" in trace.stdout and "SMS submitted" in trace.stdout
    assert PASSWORD not in trace.stdout + trace.stderr


@pytest.mark.parametrize("database", [{"url": "postgresql://ccs@127.0.0.1:1/x", "path": "a.db"},
                                      {}])
def test_both_or_neither_store_is_a_config_error(tmp_path: Path,
                                                 database: dict[str, str]) -> None:
    from tests.support.configfile import write_config

    config = write_config(tmp_path, database={"url": "postgresql://ccs:pw@127.0.0.1:1/x"})
    text = config.read_text()
    head, _, tail = text.partition("[database]\n")
    body = "".join(f'{k} = "{v}"\n' for k, v in database.items())
    config.write_text(head + "[database]\n" + body + tail.split("\n", 1)[1])
    result = ccshortlink(config, "check-config")
    assert result.returncode == 78
    assert ("path and url are both set" in result.stderr if database
            else "[database] path is required" in result.stderr)


async def test_one_daemon_killed_mid_burst_every_answered_call_still_gets_its_sms(
        tmp_path: Path, pg_url: str, smsc_factory: SmscFactory) -> None:
    """Calls keep coming to both daemons; one is SIGKILLed a third of the way in. Every
    answered call is still texted; a duplicate is possible only for an SMS the dead one
    had submitted unanswered, at most a window's worth, and each is in the SMS's events."""
    numbers = [f"+86136{index:08d}" for index in range(24)]
    peer = burst_peer(numbers, seed=3, frame_delay=0.004)
    async with running_service(tmp_path, pg_url, smsc_factory, peer, lease=3) as service:
        victim = service.daemons[0]
        smsc = service.smsc
        await smsc.wait_for(lambda: len(smsc.messages()) >= len(numbers) // 3, timeout=60)
        victim.send_signal(signal.SIGKILL)
        await victim.process.wait()
        sent_before = len({m.destination for m in smsc.messages()})
        await smsc.wait_for(lambda: every_one_texted(service, numbers), timeout=60)
        await asyncio.sleep(1.0)
    assert service.codes[1] == 0  # the survivor stops cleanly
    assert sent_before < len(numbers)  # mid-burst indeed
    assert_texted_once_but_for_takeovers(service, pg_url, numbers)
