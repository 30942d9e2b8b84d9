"""The real daemon as a child process, and its two real peers (recorded AMI bytes, the npm SMSC)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccshortlink.peers.amipeer import AmiPeer, read_transcript, rewrite_call
from ccshortlink.peers.transcript import event_name, interleave
from tests.support.configfile import write_config
from tests.support.smsc_peer import Smsc, SmscFactory, Wrap
from tests.support.transcripts import FIXTURES

ANSWERED_CALL = FIXTURES / "01-sip-answered-customer-hangup.txt"
SECRETS = ("s3cret", '"pw"')


class RunningDaemon:
    """`ccshortlink run` as a child process; its JSON log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, config: Path, env: dict[str, str] | None = None,
                    wrap: Wrap | None = None) -> RunningDaemon:
        """`wrap` runs it elsewhere, e.g. inside a live test's network namespace."""
        argv = [sys.executable, "-m", "ccshortlink", "run", "-c", str(config)]
        process = await asyncio.create_subprocess_exec(
            *(wrap(argv) if wrap else argv),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            # stdlib logging from a library is not JSON: kept in `lines` for the log checks
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))
            self._changed.set()
        self._changed.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until `predicate()` holds; re-checked on every log line (and every 0.25 s)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.process.returncode is not None and self._reader.done():
                    raise AssertionError(f"daemon exited {self.process.returncode}:\n"
                                         f"{self.log[-3000:]}")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.25)

    async def wait_event(self, event: str, count: int = 1, timeout: float = 20.0) -> dict[str, Any]:
        await self.wait_for(lambda: len(self.named(event)) >= count, timeout)
        return self.named(event)[count - 1]

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit code once the process and its log have ended."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            await self._reader
        return int(self.process.returncode or 0)


def assert_no_number_or_secret(log: str, numbers: list[str]) -> None:
    for number in numbers:
        assert number.lstrip("+")[2:] not in log, f"{number} appears in the log"
    for secret in SECRETS:
        assert secret not in log


def answered_call(index: int, customer: str, extension: str = "1001") -> list[bytes]:
    _, frames = read_transcript(ANSWERED_CALL)
    return rewrite_call(frames, index=index, customer_number=customer, agent_extension=extension)



def burst_peer(numbers: list[str], *, seed: int, sources: tuple[Path, ...] = (ANSWERED_CALL,),
               frame_delay: float = 0.0) -> AmiPeer:
    """A recorded Asterisk with a call to each number at once, interleaved (same seed, same
    stream): each of the `sources` recordings in turn. Every session gets it all."""
    banner, _ = read_transcript(sources[0])
    recorded = [read_transcript(source)[1] for source in sources]
    calls = [[f for f in rewrite_call(recorded[index % len(recorded)], index=index,
                                      customer_number=number)
              if event_name(f) != "FullyBooted"]  # a login's event, not a call's
             for index, number in enumerate(numbers)]
    return AmiPeer(interleave(calls, seed=seed), username="ccshortlink", secret="s3cret",
                   banner=banner, frame_delay=frame_delay)

@dataclass
class Peers:
    """The daemon's two peers: Asterisk (recorded AMI bytes) and the npm SMSC."""

    ami: AmiPeer
    ami_port: int
    smsc: Smsc

    def config(self, folder: Path, **sections: dict[str, object]) -> Path:
        base: dict[str, dict[str, object]] = {
            "ami": {"port": self.ami_port, "reconnect_max": 0.5}, "smpp": {"port": self.smsc.port}}
        return write_config(folder, **{**base, **sections})

    async def deliver(self, frames: list[bytes]) -> None:
        """Asterisk sends more calls: added to the replay, sent on the daemon's next session."""
        self.ami.frames.extend(frames)
        await self.ami.disconnect_clients()

    def sms_to(self, number: str) -> list[str]:
        return [m.text for m in self.smsc.messages()
                if m.complete and m.destination.lstrip("+") == number.lstrip("+")]


async def start_ami_peer(frames: list[bytes], *, tls: ssl.SSLContext | None = None
                         ) -> tuple[AmiPeer, int]:
    """One recorded Asterisk on a free port (another PBX beside start_peers' own), over TLS
    with `tls`."""
    banner, _ = read_transcript(ANSWERED_CALL)
    # A reconnecting client gets only what was added since: the calls a live Asterisk
    # would send next, never the ones it already sent.
    ami = AmiPeer(frames, username="ccshortlink", secret="s3cret", banner=banner,
                  replay_on_reconnect=False)
    return ami, await ami.start(tls=tls)


async def start_peers(smsc_factory: SmscFactory, frames: list[bytes], *,
                      ami_tls: ssl.SSLContext | None = None, **smsc: Any) -> Peers:
    """The recorded Asterisk (over TLS with `ami_tls`) and the npm SMSC (`smsc`: its options)."""
    ami, port = await start_ami_peer(frames, tls=ami_tls)
    return Peers(ami, port, await smsc_factory(system_id="ccshortlink", password="pw", **smsc))


def ccshortlink(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One `ccshortlink <command> -c config` run to the end, its output captured."""
    return subprocess.run([sys.executable, "-m", "ccshortlink", *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=60)
