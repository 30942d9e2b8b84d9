"""Fixture `live`: a real Asterisk, SIPp phones, the npm SMSC and the daemon as a process.

Everything runs on 127.0.0.1, inside a private network namespace when the tests run as root.
A live test is skipped with one line saying how to enable it where there is no Asterisk or no
sipp. When one fails, its logs (Asterisk's, every SIP message, the SMSC's and the daemon's)
are kept in test-output/live/<test>/ and the failure names that folder.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.support.certs import make_certs
from tests.support.configfile import ROOT, write_config
from tests.support.daemon import RunningDaemon
from tests.support.netns import Loopback, loopback
from tests.support.pbx import HOW_TO_ENABLE, Asterisk, ami_user, find_install
from tests.support.sipp import HOW_TO_ENABLE as NO_SIPP
from tests.support.sipp import Sipp, sipp_found
from tests.support.smsc_peer import ReceivedSms, Smsc

KEPT = ROOT / "test-output" / "live"
# The test dialplan's [hotline] (5008): the shipped [ccshortlink-hotline], the agent's chan_sip
# phone rung 8 s
HOTLINE = """[hotline]
exten => s,1,Set(CCS_RING_SECONDS=8)
 same => n,Set(CCS_AGENT_TECH=SIP)
 same => n,Goto(ccshortlink-hotline,s,1)"""
_failed = pytest.StashKey[bool]()
QUIET_KEYS = ("timestamp", "event", "level", "logger")  # a failure's daemon lines: said first


def kept_folder(nodeid: str) -> Path:
    return KEPT / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and "live" in item.fixturenames:
        item.stash[_failed] = True
        report.sections.append(("live PBX logs", f"kept in {kept_folder(item.nodeid)}"))
        desk = item.funcargs.get("live")
        if isinstance(desk, LiveDesk):  # CI keeps only what is printed: the gist of both sides
            report.sections.append(("what the PBX and the daemon said last", desk.last_words()))
    return report


def secret_of_shipped_user() -> str:
    match = re.search(r"^secret\s*=\s*(\S+)", ami_user(), re.MULTILINE)
    assert match, "etc/asterisk/manager.conf has no secret for [ccshortlink]"
    return match.group(1)


def e164(number: str) -> str:
    """A mainland number as the SMSC sees it (the tests' region is CN): +86 and the digits."""
    return number if number.startswith("+") else "+86" + number


class LiveDesk:
    """One live test's PBX, phones, SMSC and daemon, and what a user would look at."""

    def __init__(self, net: Loopback, folder: Path, pbx: Asterisk, smsc: Smsc,
                 web_port: int = 0) -> None:
        self.net, self.folder, self.pbx, self.smsc = net, folder, pbx, smsc
        self.web_port = web_port or net.port()  # the daemon's [web] listen
        self.daemon: RunningDaemon | None = None
        self.config: Path | None = None
        self.sipps: list[Sipp] = []

    # ---- phones and calls --------------------------------------------------------------------

    async def phone(self, extension: str, scenario: str = "uas_answer", *, ring_ms: int = 300,
                    hold_ms: int = 2000) -> Sipp:
        """The agent's SIP phone on its port: answers (or not, per scenario) until stopped."""
        port = self.pbx.ports.agents[extension]
        phone = await Sipp.run(self.net, self.folder, f"phone-{extension}", scenario,
                               ["-p", str(port), "-mp", str(self.net.media_port())],
                               {"@RING_MS@": str(ring_ms), "@HOLD_MS@": str(hold_ms)})
        self.sipps.append(phone)
        return phone

    async def customer_phone(self, scenario: str = "uas_answer", *, ring_ms: int = 300,
                             hold_ms: int = 1000) -> Sipp:
        """The customers' side of the trunk: where Asterisk sends calls out to a customer."""
        phone = await Sipp.run(self.net, self.folder, "trunk", scenario,
                               ["-p", str(self.pbx.ports.trunk), "-mp", str(self.net.media_port())],
                               {"@RING_MS@": str(ring_ms), "@HOLD_MS@": str(hold_ms)})
        self.sipps.append(phone)
        return phone

    async def dial(self, caller: str, dialled: str, scenario: str = "uac_hangup", *,
                   talk_ms: int = 1500, display: str = "") -> Sipp:
        """Start one call from `caller` (a customer's number, or an agent's extension)."""
        csv = self.folder / "sipp" / f"call-{caller.lstrip('+')}-{len(self.sipps)}.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_text(f"SEQUENTIAL\n{caller};{dialled};{display or caller};\n", encoding="utf-8")
        args = [f"127.0.0.1:{self.pbx.ports.sip}", "-inf", str(csv), "-p", str(self.net.port()),
                "-mp", str(self.net.media_port()), "-m", "1", "-d", str(talk_ms),
                "-timeout", "60s", "-timeout_error"]
        call = await Sipp.run(self.net, self.folder, f"{caller.lstrip('+')}-{dialled}",
                              scenario, args)
        self.sipps.append(call)
        return call

    async def call(self, caller: str, dialled: str, scenario: str = "uac_hangup", *,
                   talk_ms: int = 1500) -> None:
        """One whole call; fails unless SIPp saw it go as the scenario says."""
        sipp = await self.dial(caller, dialled, scenario, talk_ms=talk_ms)
        code = await sipp.finished()
        assert code == 0, f"sipp {sipp.name} exited {code}; see {sipp.messages}"

    async def hangups(self, count: int, timeout: float = 20.0) -> None:
        """Wait until Asterisk has sent `count` Cdr events (each ended call leg has one)."""
        assert self.pbx.admin is not None
        await self.pbx.admin.wait_event("Cdr", count=count, timeout=timeout)

    # ---- the daemon --------------------------------------------------------------------------

    async def start_daemon(self, **sections: dict[str, object]) -> RunningDaemon:
        base: dict[str, dict[str, object]] = {
            "ami": {"host": "127.0.0.1", "port": self.pbx.ports.ami, "username": "ccshortlink",
                    "secret": secret_of_shipped_user(), "reconnect_max": 0.5},
            "smpp": {"port": self.smsc.port},
            "web": {"listen": f"127.0.0.1:{self.web_port}"},
        }
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        self.config = write_config(self.folder, **base)
        daemon = await RunningDaemon.start(self.config, wrap=self.net.command)
        self.daemon = daemon
        await daemon.wait_event("daemon_ready", timeout=30)
        await daemon.wait_event("ami_connected", timeout=30)
        return daemon

    async def stop_daemon(self) -> int:
        assert self.daemon is not None
        code = await self.daemon.stop()
        self._save_daemon_log()
        return code

    def _save_daemon_log(self) -> None:
        if self.daemon is not None:
            with (self.folder / "daemon.log").open("a", encoding="utf-8") as log:
                log.write(self.daemon.log)

    # ---- what a user sees ---------------------------------------------------------------------

    def sms_to(self, number: str) -> list[ReceivedSms]:
        """What reached `number` (as the customer's phone shows it: national, or +E.164)."""
        wanted = e164(number)
        return [m for m in self.smsc.messages()
                if m.complete and e164("+" + m.destination.lstrip("+")) == wanted]

    async def wait_sms(self, number: str, count: int = 1, timeout: float = 20.0) -> list[str]:
        await self.smsc.wait_for(lambda: len(self.sms_to(number)) >= count, timeout)
        return [m.text for m in self.sms_to(number)]

    async def daemon_said(self, event: str, count: int = 1, timeout: float = 20.0) -> None:
        assert self.daemon is not None
        await self.daemon.wait_event(event, count, timeout)

    def decisions(self) -> list[dict[str, Any]]:
        """The daemon's decisions so far, as logged: card_queued and card_skipped."""
        assert self.daemon is not None
        return [e for e in self.daemon.events if e.get("event") in ("card_queued", "card_skipped")]

    async def wait_decisions(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        assert self.daemon is not None
        await self.daemon.wait_for(lambda: len(self.decisions()) >= count, timeout)
        return self.decisions()

    def trace(self, query: str) -> dict[str, Any]:
        """`ccshortlink trace QUERY --json`, as an operator runs it."""
        assert self.config is not None
        done = subprocess.run([sys.executable, "-m", "ccshortlink", "trace", query, "--json",
                               "-c", str(self.config)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, f"trace {query}: {done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    async def post(self, path: str, **headers: str) -> tuple[int, dict[str, str]]:
        """An HTTP POST to the daemon's web, as a browser on the card sends it: status, headers."""
        reader, writer = await self.net.connect(self.web_port)
        try:
            lines = [f"POST {path} HTTP/1.1", "Host: cs.example.com", "Content-Length: 0",
                     "Connection: close", *(f"{k.replace('_', '-')}: {v}"
                                            for k, v in headers.items())]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
        finally:
            writer.close()
        status_line, *fields = head.split("\r\n")
        answer = {k.strip().lower(): v.strip()
                  for k, _, v in (f.partition(":") for f in fields if ":" in f)}
        return int(status_line.split()[1]), answer

    def last_words(self, count: int = 40) -> str:
        """The last AMI events Asterisk sent (as the test's own session read them) and the
        daemon's last log lines, one short line each, for a failure's report."""
        keys = ("Channel", "DestinationChannel", "Uniqueid", "Disposition", "Cause")
        admin = self.pbx.admin
        events = [" ".join([e.get("Event", "?"), *(f"{k}={e[k]}" for k in keys if k in e)])
                  for e in (admin.events if admin else []) if e.get("Event") != "VarSet"]
        logged = [" ".join([str(e.get("timestamp", ""))[11:23], str(e.get("event")),
                            *(f"{k}={v}" for k, v in e.items() if k not in QUIET_KEYS)])
                  for e in (self.daemon.events if self.daemon else [])]
        return "\n".join(["AMI events:", *events[-count:], "daemon log:", *logged[-count:]])

    # ---- the end -----------------------------------------------------------------------------

    async def close(self) -> None:
        for sipp in self.sipps:
            await sipp.stop()
        if self.daemon is not None and self.daemon.process.returncode is None:
            await self.stop_daemon()
        await self.pbx.stop()
        await self.smsc.kill()
        (self.folder / "smsc.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in self.smsc.events), encoding="utf-8")


@pytest.fixture
def live_network() -> Iterator[Loopback]:
    with loopback() as net:
        yield net


@pytest_asyncio.fixture
async def live(request: pytest.FixtureRequest, tmp_path: Path,
               live_network: Loopback) -> AsyncIterator[LiveDesk]:
    """A running Asterisk (FullyBooted) and SMSC; the test starts phones, calls and the daemon.

    Parametrized indirectly with {"ami_tls": True}, Asterisk's AMI also listens over TLS with a
    certificate made for the test (its CA in tmp_path/certs); with {"callback": True}, the
    daemon's AMI user may originate and 5008 runs the shipped hotline dialplan."""
    install = find_install()
    if install is None:
        pytest.skip(HOW_TO_ENABLE)
    if not sipp_found():
        pytest.skip(NO_SIPP)
    options: dict[str, Any] = getattr(request, "param", None) or {}
    certs = make_certs(tmp_path / "certs") if options.get("ami_tls") else None
    web_port = live_network.port()
    callbacks = bool(options.get("callback"))
    # Call-backs: the daemon's AMI user may originate, and 5008 is the shipped hotline context
    pbx = Asterisk(install, live_network, tmp_path / "asterisk", tls=certs, originate=callbacks,
                   hotline=HOTLINE if callbacks else "", lookup_port=web_port)
    smsc = await Smsc.start(system_id="ccshortlink", password="pw", wrap=live_network.command)
    desk = LiveDesk(live_network, tmp_path, pbx, smsc, web_port)
    try:
        await pbx.start()
        yield desk
    finally:
        await desk.close()
        if request.node.stash.get(_failed, False):
            kept = kept_folder(request.node.nodeid)
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(tmp_path, kept, ignore=shutil.ignore_patterns("*.db*", "avatars"))
