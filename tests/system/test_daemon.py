"""The wired daemon against real peers: refusals exit 78, replies opt out, the other triggers."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from ccshortlink.config.settings import load_config
from ccshortlink.daemon import Daemon
from ccshortlink.ops.logs import get_logger
from ccshortlink.peers.amipeer import AmiPeer, read_transcript
from tests.support.configfile import write_config
from tests.support.smsc_peer import Smsc, SmscFactory
from tests.support.transcripts import FIXTURES

CUSTOMER = "8613800138000"


def frames(*names: str) -> tuple[bytes, list[bytes]]:
    banner, out = b"", []
    for name in names:
        banner, more = read_transcript(FIXTURES / name)
        out += more
    return banner, out


@asynccontextmanager
async def running(tmp_path: Path, smsc: Smsc, peer_frames: list[bytes], banner: bytes,
                  **sections: dict[str, object]) -> AsyncIterator[tuple[Daemon, AmiPeer]]:
    peer = AmiPeer(peer_frames, username="ccshortlink", secret="s3cret", banner=banner)
    port = await peer.start()
    sections.setdefault("web", {}).update({"listen": "127.0.0.1:0",
                                           "public_url": "https://cs.example.com"})
    config = load_config(write_config(
        tmp_path, ami={"port": port}, smpp={"port": smsc.port, **sections.pop("smpp", {})},
        **sections))
    daemon = Daemon(config, get_logger())
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), timeout=15)
        yield daemon, peer
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(task, timeout=20) == 0
        await peer.stop()


def db_rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "state" / "ccshortlink.db") as conn:
        return conn.execute(sql).fetchall()


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccshortlink", *args], capture_output=True,
                          text=True, timeout=timeout)


async def test_refused_ami_login_exits_78(tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(password="pw")
    banner, calls = frames("01-sip-answered-customer-hangup.txt")
    peer = AmiPeer(calls, username="ccshortlink", secret="another-secret", banner=banner)
    port = await peer.start()
    config = write_config(tmp_path, ami={"port": port}, smpp={"port": smsc.port})
    try:
        result = await asyncio.to_thread(run_cli, "run", "-c", str(config))
    finally:
        await peer.stop()
    assert result.returncode == 78, result.stderr[-1500:]
    assert "AMI login refused" in result.stderr
    assert peer.logins == 0 and peer.failed_logins == 1  # no reconnect loop
    assert "s3cret" not in result.stderr


async def test_refused_smpp_bind_exits_78(tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(password="right")
    config = write_config(tmp_path, smpp={"port": smsc.port, "password": "wrong"})
    result = await asyncio.to_thread(run_cli, "run", "-c", str(config))
    assert result.returncode == 78, result.stderr[-1500:]
    assert "SMSC refused the bind" in result.stderr and "wrong" not in result.stderr


async def test_a_customer_reply_td_stops_later_sms(tmp_path: Path,
                                                   smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(password="pw", mo=f"{CUSTOMER}:TD")
    banner, calls = frames("01-sip-answered-customer-hangup.txt")
    async with running(tmp_path, smsc, [], banner) as (daemon, peer):
        for _ in range(100):
            if db_rows(tmp_path, "SELECT customer_number FROM opt_outs"):
                break
            await asyncio.sleep(0.05)
        assert db_rows(tmp_path, "SELECT customer_number, source FROM opt_outs") == [
            ("+8613800138000", "sms reply")]
        for event in calls:  # now the recorded call ends
            daemon._on_ami_event("default", _parse(event))
        for _ in range(100):
            if db_rows(tmp_path, "SELECT outcome FROM decisions"):
                break
            await asyncio.sleep(0.05)
    assert db_rows(tmp_path, "SELECT outcome, reason FROM decisions") == [
        ("skipped", "number opted out (on the do-not-send list)")]
    # the one SMS is the confirmation of the opt-out, no card
    [confirmation] = smsc.messages()
    assert confirmation.text.startswith("您已退订") and "http" not in confirmation.text


def _parse(frame: bytes) -> dict[str, str]:
    lines = frame.decode().strip().split("\r\n")
    return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in lines)


async def test_feature_code_after_the_call_sends_the_card_again(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(password="pw")
    banner, calls = frames("01-sip-answered-customer-hangup.txt", "05-userevent-sendcard.txt")
    async with running(tmp_path, smsc, calls, banner,
                       policy={"resend_window_hours": 0}) as (daemon, peer):
        await smsc.wait_for(lambda: len([m for m in smsc.messages() if m.complete]) == 2)
    triggers = db_rows(tmp_path, "SELECT trigger, outcome FROM decisions ORDER BY id")
    assert triggers == [("hangup", "sent"), ("feature_code", "sent")]
    first, second = smsc.messages()
    assert first.destination.lstrip("+") == second.destination.lstrip("+") == CUSTOMER
    assert first.text == second.text  # the same live link for the same pair


async def test_crm_api_and_cli_send_through_the_same_policy(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(password="pw")
    async with running(tmp_path, smsc, [], b"Asterisk Call Manager/9.0.0\r\n",
                       web={"api_token": "t0ken"}) as (daemon, peer):
        url = f"http://127.0.0.1:{daemon.web_port}/api/v1/send"
        async with aiohttp.ClientSession() as http:
            body = {"agent": "CS1002", "to": "13912345678"}
            async with http.post(url, json=body) as denied:
                assert denied.status == 401
            auth = {"Authorization": "Bearer t0ken"}
            async with http.post(url, json=body, headers=auth) as accepted:
                assert accepted.status == 202
                assert (await accepted.json())["status"] == "queued"
            async with http.post(url, json={"agent": "CS1002", "to": "1001"},
                                 headers=auth) as refused:
                assert refused.status == 422
                assert "internal" in (await refused.json())["reason"]
        await smsc.wait_for(lambda: len(smsc.accepted()) >= 1)
        config = tmp_path / "ccshortlink.toml"
        result = await asyncio.to_thread(run_cli, "send", "-c", str(config), "--agent",
                                         "CS1001", "--to", "+86 139 1234 5678")
        assert result.returncode == 0, result.stderr
        assert '"status": "queued"' in result.stdout
        await smsc.wait_for(lambda: len([m for m in smsc.messages() if m.complete]) == 2)
    texts = sorted(m.text for m in smsc.messages())
    assert any("Daniel Chen" in t for t in texts) and any("王小梅" in t for t in texts)
    assert {t for (t,) in db_rows(tmp_path, "SELECT trigger FROM decisions")} == {"api", "cli"}


async def test_reload_picks_up_a_new_sms_template_and_keeps_the_old_one_if_broken(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    smsc = await smsc_factory(password="pw")
    config = tmp_path / "ccshortlink.toml"
    async with running(tmp_path, smsc, [], b"Asterisk Call Manager/9.0.0\r\n") as (daemon, _):
        original = config.read_text(encoding="utf-8")
        config.write_text(original + '\n[sms]\ntemplate = "{{ agent.name }} 的名片 {{ url }}"\n',
                          encoding="utf-8")
        assert await daemon.reload()
        assert (await daemon.send_card("CS1001", "13912345678"))["status"] == "queued"
        config.write_text(original + '\n[sms]\ntemplate = "{{ agent.nope }} {{ url }}"\n',
                          encoding="utf-8")
        assert not await daemon.reload()  # a template that cannot render: the old one stays
        assert (await daemon.send_card("CS1001", "13912345679"))["status"] == "queued"
        await smsc.wait_for(lambda: len([m for m in smsc.messages() if m.complete]) == 2)
    texts = [m.text for m in smsc.messages()]
    assert all(t.startswith("王小梅 的名片 https://cs.example.com/") for t in texts), texts
