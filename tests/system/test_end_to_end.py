"""The whole path across real sockets: recorded AMI bytes → `ccshortlink run` → npm SMSC → page."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import aiohttp

from ccshortlink.peers.amipeer import AmiPeer, read_transcript, rewrite_call
from tests.support.configfile import write_config
from tests.support.daemon import burst_peer
from tests.support.smsc_peer import SmscFactory
from tests.support.transcripts import FIXTURES

QUEUE_CUSTOMER = "+8613912345678"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recorded_calls() -> tuple[bytes, list[bytes]]:
    """Answered direct call, abandoned call, answered queue call (another customer), originate."""
    banner, answered = read_transcript(FIXTURES / "01-sip-answered-customer-hangup.txt")
    _, abandoned = read_transcript(FIXTURES / "03-sip-ring-no-answer-abandon.txt")
    _, queue = read_transcript(FIXTURES / "04-queue-sip-members-answered.txt")
    _, local = read_transcript(FIXTURES / "06-local-originate.txt")
    queue = rewrite_call(queue, index=7, customer_number=QUEUE_CUSTOMER)
    return banner, answered + abandoned + queue + local


async def test_answered_calls_get_one_sms_each_and_the_link_opens_the_card(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(system_id="ccshortlink", password="pw", receipts=True)
    banner, frames = recorded_calls()
    peer = AmiPeer(frames, username="ccshortlink", secret="s3cret", banner=banner,
                   frame_delay=0.002)
    ami_port = await peer.start()
    web_port = free_port()
    config = write_config(
        tmp_path,
        ami={"port": ami_port},
        smpp={"port": smsc.port, "enquire_link_interval": 5},
        web={"listen": f"127.0.0.1:{web_port}", "public_url": f"http://127.0.0.1:{web_port}"})
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccshortlink", "run", "-c", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await smsc.wait_for(lambda: len([m for m in smsc.messages() if m.complete]) >= 2,
                            timeout=30)
        await peer.wait_done(timeout=10)
        await asyncio.sleep(1.0)  # anything wrongly decided would arrive by now
        messages = smsc.messages()
        assert sorted(m.destination.lstrip("+") for m in messages) == [
            "8613800138000", "8613912345678"]
        for message in messages:
            assert message.complete
            assert message.data_coding == 8  # Chinese text goes as UCS-2 ...
            assert message.total == 1  # ... and the default text fits one part (70 characters)
            assert "王小梅" in message.text and "CS1001" in message.text
            assert f"http://127.0.0.1:{web_port}/" in message.text

        found = re.search(rf"http://127\.0\.0\.1:{web_port}/[A-Za-z0-9]{{9}}", messages[0].text)
        assert found is not None, messages[0].text
        url = found.group(0)
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                page = await response.text()
                assert response.status == 200
                headers = str(response.headers)
            async with http.get(f"http://127.0.0.1:{web_port}/zzzzzzzzz") as missing:
                assert missing.status == 404
        assert "王小梅" in page and "CS1001" in page
        assert 'href="tel:+862088880000,,1001"' in page
        for form in ("13800138000", "138****8000", "13912345678"):
            assert form not in page and form not in headers

        # the SMSC's delivery receipts came back and were stored
        db = tmp_path / "state" / "ccshortlink.db"
        for _ in range(50):
            with sqlite3.connect(db) as conn:
                statuses = [r[0] for r in conn.execute("SELECT status FROM sms")]
            if statuses == ["delivered", "delivered"]:
                break
            await asyncio.sleep(0.1)
        assert statuses == ["delivered", "delivered"]
        with sqlite3.connect(db) as conn:
            decisions = conn.execute(
                "SELECT trigger, outcome FROM decisions ORDER BY id").fetchall()
        # the recorded call nobody answered is in trace too, as skipped: no SMS for it
        assert decisions == [("hangup", "sent"), ("not_answered", "skipped"), ("hangup", "sent")]
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(daemon.communicate(), timeout=20)
        await peer.stop()
    assert daemon.returncode == 0, stderr.decode()[-2000:]
    logs = stderr.decode()
    assert '"event": "call_ended"' in logs and '"event": "sms_submitted"' in logs
    for full in ("13800138000", "13912345678", "s3cret", '"pw"'):
        assert full not in logs


async def test_interleaved_calls_get_exactly_one_sms_per_answered_conversation(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    """150 real-shaped calls at once on one AMI connection: one SMS each, or none."""
    numbers = [f"+86137{index:08d}" for index in range(150)]
    expected = {n.lstrip("+") for index, n in enumerate(numbers) if index % 4 in (0, 2)}
    smsc = await smsc_factory(system_id="ccshortlink", password="pw")
    peer = burst_peer(numbers, seed=11, sources=tuple(FIXTURES / name for name in (
        "01-sip-answered-customer-hangup.txt", "03-sip-ring-no-answer-abandon.txt",
        "04-queue-sip-members-answered.txt", "06-local-originate.txt")))
    ami_port = await peer.start()
    web_port = free_port()
    config = write_config(
        tmp_path, ami={"port": ami_port}, smpp={"port": smsc.port, "window": 20},
        web={"listen": f"127.0.0.1:{web_port}", "public_url": f"http://127.0.0.1:{web_port}"})
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccshortlink", "run", "-c", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await smsc.wait_for(lambda: len([m for m in smsc.messages() if m.complete])
                            >= len(expected), timeout=60)
        await peer.wait_done(timeout=10)
        await asyncio.sleep(1.0)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(daemon.communicate(), timeout=30)
        await peer.stop()
    assert daemon.returncode == 0, stderr.decode()[-2000:]
    destinations = [m.destination.lstrip("+") for m in smsc.messages()]
    assert len(destinations) == len(expected) == 75
    assert set(destinations) == expected
    with sqlite3.connect(tmp_path / "state" / "ccshortlink.db") as conn:
        decided = conn.execute("SELECT COUNT(*), COUNT(DISTINCT linkedid) FROM decisions"
                               " WHERE outcome = 'sent'").fetchone()
    assert decided == (75, 75)
