"""Record tests/fixtures/10-*.txt: what a real Asterisk sends for a call-back and for presence.

`python -m tests.live.recorder OUTDIR [NAME...]` with CCS_ASTERISK_PREFIX set, as root (its own
network namespace) or not. Each transcript is one AMI session of the project's own user from
etc/asterisk/manager.conf (with `write = originate` where it sends the Originate, as the daemon
does when [callback] is on), byte for byte; OUTDIR/actions-sent/ holds what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.amiadmin import AmiAdmin, parse
from tests.support.livekit import secret_of_shipped_user
from tests.support.netns import Loopback, loopback
from tests.support.pbx import Asterisk, find_install
from tests.support.sipp import Sipp

CUSTOMER = "+8613800138000"  # who the recorded calls are with, as in every fixture
NATIONAL = "13800138000"  # [callback] customer_exten "{national}" of that number
HOTLINE = "4008008888"  # the caller ID of a call-back ([web] hotline)


class Recording:
    """One AMI session: every byte received, every action sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.raw = bytearray()
        self.sent: list[str] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while chunk := await self.reader.read(65536):
            self.raw += chunk
            self._changed.set()
        self._changed.set()

    def events(self, name: str, **fields: str) -> list[dict[str, str]]:
        frames = [parse(bytes(block)) for block in bytes(self.raw).split(b"\r\n\r\n")]
        return [f for f in frames if f.get("Event") == name
                and all(f.get(k) == v for k, v in fields.items())]

    async def until(self, name: str, count: int = 1, timeout: float = 60.0, **fields: str) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events(name, **fields)) < count:
                self._changed.clear()
                await self._changed.wait()

    def send(self, action: str, **headers: str) -> None:
        text = "".join(f"{k}: {v}\r\n" for k, v in {"Action": action, **headers}.items())
        self.sent.append(text.replace("\r\n", "\n"))
        self.writer.write((text + "\r\n").encode())

    async def logoff(self) -> None:
        self.send("Logoff", ActionID="logoff-1")
        await asyncio.wait_for(self._task, 10)  # Asterisk closes after Goodbye
        self.writer.close()

    def save(self, folder: Path, name: str) -> None:
        (folder / f"{name}.txt").write_bytes(bytes(self.raw))
        sent = folder / "actions-sent" / f"{name}.sent.txt"
        sent.parent.mkdir(parents=True, exist_ok=True)
        sent.write_text("\n".join(self.sent), encoding="utf-8")


class Bench:
    """A fresh Asterisk (no system name: Uniqueids like 1796600292.0) and its SIPp phones."""

    def __init__(self, net: Loopback, folder: Path, *, originate: bool) -> None:
        install = find_install()
        assert install is not None, "set CCS_ASTERISK_PREFIX"
        self.net, self.folder = net, folder
        self.pbx = Asterisk(install, net, folder / "asterisk", name="", originate=originate)
        self.sipps: list[Sipp] = []

    async def phone(self, extension: str, scenario: str, *extra: str,
                    ring_ms: int = 300, hold_ms: int = 2000) -> Sipp:
        port = self.pbx.ports.agents[extension] if extension != "trunk" else self.pbx.ports.trunk
        sipp = await Sipp.run(self.net, self.folder, f"phone-{extension}", scenario,
                              ["-p", str(port), "-mp", str(self.net.media_port()), *extra],
                              {"@RING_MS@": str(ring_ms), "@HOLD_MS@": str(hold_ms)})
        self.sipps.append(sipp)
        return sipp

    async def call(self, caller: str, dialled: str, talk_ms: int = 2000) -> None:
        csv = self.folder / f"call-{len(self.sipps)}.csv"
        csv.write_text(f"SEQUENTIAL\n{caller};{dialled};{caller};\n", encoding="utf-8")
        sipp = await Sipp.run(self.net, self.folder, f"call-{dialled}", "uac_hangup", [
            f"127.0.0.1:{self.pbx.ports.sip}", "-inf", str(csv), "-p", str(self.net.port()),
            "-mp", str(self.net.media_port()), "-m", "1", "-d", str(talk_ms),
            "-timeout", "60s", "-timeout_error"])
        self.sipps.append(sipp)
        assert await sipp.finished() == 0, sipp.messages

    async def session(self) -> Recording:
        reader, writer = await self.net.connect(self.pbx.ports.ami)
        recording = Recording(reader, writer)
        recording.send("Login", Username="ccshortlink", Secret=secret_of_shipped_user(),
                       Events="on", ActionID="login-1")
        return recording

    def configure(self) -> None:
        """The test PBX's config; the recording user may also read `system` (FullyBooted at
        login, PeerStatus) like the earlier fixtures' user: the other events are the same."""
        self.pbx.write_config()
        manager = self.pbx.folder / "etc" / "manager.conf"
        text = manager.read_text(encoding="utf-8")
        assert "\nread = call,agent,user,cdr\n" in text, "the shipped user's read changed"
        manager.write_text(text.replace("\nread = call,agent,user,cdr\n",
                                        "\nread = call,agent,user,cdr,system\n", 1),
                           encoding="utf-8")

    async def start(self) -> None:
        if not (self.pbx.folder / "etc" / "manager.conf").exists():
            self.configure()
        await self.pbx.start()

    @property
    def admin(self) -> AmiAdmin:
        assert self.pbx.admin is not None
        return self.pbx.admin

    async def close(self) -> None:
        for sipp in self.sipps:
            await sipp.stop()
        await self.pbx.stop()


def originate(recording: Recording, timeout_ms: int) -> None:
    """The call-back as the daemon places it (issue 15's design)."""
    recording.send("Originate", ActionID="ccs-cb-1", Channel="SIP/1001", Context="from-internal",
                   Exten=NATIONAL, Priority="1", CallerID=HOTLINE, Timeout=str(timeout_ms),
                   Async="true", Variable="CCS_CALLBACK=1")


async def answered(bench: Bench) -> Recording:
    """1001 answers after 0.3 s, the customer after 0.3 s; the customer hangs up after 2 s."""
    await bench.phone("1001", "uas_answer")
    await bench.phone("trunk", "uas_answer_bye", hold_ms=2000)
    await bench.start()
    rec = await bench.session()
    originate(rec, 30000)
    await rec.until("Hangup", 2)
    await rec.until("Cdr")
    return rec


async def agent_noanswer(bench: Bench) -> Recording:
    """1001's phone rings and never answers: the Originate's Timeout (5 s here) ends it."""
    await bench.phone("1001", "uas_noanswer")
    await bench.start()
    rec = await bench.session()
    originate(rec, 5000)
    await rec.until("OriginateResponse")
    await rec.until("Hangup")
    return rec


async def customer_noanswer(bench: Bench) -> Recording:
    """1001 answers; the customer's phone rings until the dialplan's Dial(…,30) gives up."""
    await bench.phone("1001", "uas_answer")
    await bench.phone("trunk", "uas_noanswer")
    await bench.start()
    rec = await bench.session()
    originate(rec, 30000)
    await rec.until("Hangup", 2, timeout=60)
    await rec.until("Cdr", timeout=10)
    return rec


async def presence(bench: Bench) -> Recording:
    """The read-only user: a direct call to 1001, a queue call 1001 answers, 1001 unreachable."""
    sip = bench.pbx.folder / "etc" / "sip.conf"
    bench.configure()
    # 1001's phone is qualified here (OPTIONS every second), so its going away is seen
    text = sip.read_text(encoding="utf-8")
    sip.write_text(text.replace("[1001](agent)\n", "[1001](agent)\nqualify = 500\n"
                                "qualifyfreq = 1\n"), encoding="utf-8")
    phone = await bench.phone("1001", "uas_answer", "-aa", ring_ms=1000)
    await bench.phone("1002", "uas_noanswer", "-aa")
    await bench.start()
    rec = await bench.session()
    with contextlib.suppress(TimeoutError):  # may have come before the admin's login
        await bench.admin.wait_event("PeerStatus", PeerStatus="Reachable", timeout=5)
    await asyncio.sleep(1)
    await bench.call(CUSTOMER, "5000")  # direct
    await asyncio.sleep(1)
    await bench.call(CUSTOMER, "5001")  # the queue rings 1001 and 1002, 1001 answers
    await rec.until("Cdr", 3)
    await asyncio.sleep(1)
    await phone.stop()  # the phone goes away: its qualify times out
    await bench.admin.wait_event("PeerStatus", PeerStatus="Unreachable", timeout=30)
    await asyncio.sleep(1)
    seen = len(bench.admin.named("PeerStatus", PeerStatus="Reachable"))
    await bench.phone("1001", "uas_answer", "-aa")
    await bench.admin.wait_event("PeerStatus", seen + 1, PeerStatus="Reachable", timeout=30)
    await asyncio.sleep(1)
    return rec


SCENARIOS: dict[str, tuple[bool, Callable[[Bench], Awaitable[Recording]]]] = {
    "10-originate-callback-answered": (True, answered),
    "10-originate-agent-noanswer": (True, agent_noanswer),
    "10-originate-customer-noanswer": (True, customer_noanswer),
    "10-presence": (False, presence),
}


async def record(out: Path, names: list[str]) -> None:
    for name in names or list(SCENARIOS):
        with_originate, scenario = SCENARIOS[name]
        with loopback() as net, tempfile.TemporaryDirectory(dir=out) as tmp:
            bench = Bench(net, Path(tmp), originate=with_originate)
            try:
                rec = await scenario(bench)
                await asyncio.sleep(0.5)
                await rec.logoff()
                rec.save(out, name)
                print(name, len(rec.raw), "bytes")
            except BaseException:
                keep = out / f"failed-{name}"
                await bench.close()
                shutil.copytree(tmp, keep, dirs_exist_ok=True)
                print(f"{name} failed; its PBX and phones are kept in {keep}", file=sys.stderr)
                raise
            await bench.close()


if __name__ == "__main__":
    asyncio.run(record(Path(sys.argv[1]), sys.argv[2:]))
