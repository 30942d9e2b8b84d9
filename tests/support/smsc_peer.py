"""Run the node SMSC (tests/smsc/server.js) as a real peer and read back what it received."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from ccshortlink.core.sms import ESM_CLASS_UDHI, decode_parts

# How a command is run: as it is, or inside a live test's network namespace (`ip netns exec`).
Wrap = Callable[[list[str]], list[str]]

SERVER_JS = Path(__file__).parent.parent / "smsc" / "server.js"


@dataclass(frozen=True)
class ReceivedSms:
    """One message as the SMSC saw it: concatenated parts grouped and put in order."""

    destination: str
    text: str
    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]  # short_message octets as received, UDH included
    reference: int | None  # 16- or 8-bit concatenation reference, None for a single SMS
    total: int  # parts announced in the UDH (1 for a single SMS)

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.total


def concat_info(esm_class: int, octets: bytes) -> tuple[int, int, int] | None:
    """(reference, total, index) from a concatenation UDH (IEI 0x08 or 0x00), else None."""
    if not esm_class & ESM_CLASS_UDHI or not octets:
        return None
    udh = octets[1:octets[0] + 1]
    pos = 0
    while pos + 2 <= len(udh):
        iei, length = udh[pos], udh[pos + 1]
        value = udh[pos + 2:pos + 2 + length]
        if iei == 0x08 and length == 4:
            return (value[0] << 8) | value[1], value[2], value[3]
        if iei == 0x00 and length == 3:
            return value[0], value[1], value[2]
        pos += 2 + length
    return None


def _flag(name: str, value: Any) -> list[str]:
    option = "--" + name.replace("_", "-")
    if value is True:
        return [option]
    if value is False or value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [arg for item in value for arg in (option, str(item))]
    if isinstance(value, int) and name.endswith("_status"):
        return [option, hex(value)]
    return [option, str(value)]


class Smsc:
    """A running node SMSC process; use `async with await Smsc.start(...)` or `smsc_factory`."""

    def __init__(self, args: list[str], wrap: Wrap | None = None) -> None:
        self._args = args
        self._wrap = wrap or (lambda argv: argv)
        self.port = 0
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()

    @classmethod
    async def start(cls, *, system_id: str = "ccshortlink", password: str = "secret",
                    port: int = 0, wrap: Wrap | None = None, **behaviour: Any) -> Smsc:
        """Start the SMSC; keyword arguments map to its flags (drop_after=2 -> --drop-after 2)."""
        if shutil.which("node") is None:
            raise RuntimeError("node is not installed: the test SMSC needs Node.js")
        args = ["--system-id", system_id, "--password", password]
        for name, value in behaviour.items():
            args += _flag(name, value)
        smsc = cls(args, wrap)
        await smsc._spawn(port)
        return smsc

    async def _spawn(self, port: int) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._wrap(["node", str(SERVER_JS), "--port", str(port), *self._args]),
            cwd=SERVER_JS.parent, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        listening_before = len(self.listening_events())
        self._readers = [asyncio.create_task(self._read_events(self._process)),
                         asyncio.create_task(self._read_stderr(self._process))]
        await self.wait_for(lambda: len(self.listening_events()) > listening_before, timeout=15)
        self.port = self.listening_events()[-1]["port"]

    async def _read_events(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.stderr.append(line.decode(errors="replace"))
            self._changed.set()
        self._changed.set()

    async def _read_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            self.stderr.append(line.decode(errors="replace"))

    async def __aenter__(self) -> Smsc:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.kill()

    # ---- what the SMSC saw -----------------------------------------------------------------

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def listening_events(self) -> list[dict[str, Any]]:
        return self.named("listening")

    def accepted(self) -> list[dict[str, Any]]:
        """submit_sm the SMSC took (status 0), answered or not, duplicates included."""
        return [e for e in self.named("submit_sm") if e["status"] == 0]

    def binds(self) -> list[dict[str, Any]]:
        return self.named("bind")

    def messages(self) -> list[ReceivedSms]:
        """Accepted submits, concatenated parts reassembled by (destination, reference).

        A resent part of a concatenated SMS is counted once; a single SMS accepted twice
        (a resend after a lost response) appears twice.
        """
        groups: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}
        singles: list[tuple[dict[str, Any], bytes]] = []
        for event in self.accepted():
            octets = bytes.fromhex(event["short_message_hex"])
            info = concat_info(event["esm_class"], octets)
            if info is None:
                singles.append((event, octets))
                continue
            reference, total, index = info
            key = (event["destination_addr"], reference, total, event["data_coding"])
            groups.setdefault(key, {}).setdefault(index, event)
        received = [ReceivedSms(e["destination_addr"],
                                decode_parts(e["data_coding"], e["esm_class"], [octets]),
                                e["data_coding"], e["esm_class"], (octets,), None, 1)
                    for e, octets in singles]
        for (destination, reference, total, data_coding), parts in groups.items():
            ordered = [bytes.fromhex(parts[i]["short_message_hex"]) for i in sorted(parts)]
            esm_class = next(iter(parts.values()))["esm_class"]
            received.append(ReceivedSms(destination, decode_parts(data_coding, esm_class, ordered),
                                        data_coding, esm_class, tuple(ordered), reference, total))
        return received

    def texts(self) -> list[str]:
        return [sms.text for sms in self.messages()]

    async def wait_accepted(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` submit_sm were accepted (the reply can overtake the SMSC's output)."""
        await self.wait_for(lambda: len(self.accepted()) >= count, timeout)

    async def wait_events(self, event: str, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: len(self.named(event)) >= count, timeout)

    async def reply(self, source: str, text: str) -> None:
        """A customer's SMS to us, now: a deliver_sm to every bound session (the MO's
        deliver_sm_resp events say when the daemon has answered it)."""
        assert self._process is not None and self._process.stdin is not None
        if "\n" in text:
            raise ValueError("one line per reply")
        self._process.stdin.write(f"mo {source}:{text}\n".encode())
        await self._process.stdin.drain()

    def mo_answered(self, source: str = "") -> list[dict[str, Any]]:
        """deliver_sm_resp for MO messages (from `source`, when given), in order."""
        return [e for e in self.named("deliver_sm_resp") if e.get("kind") == "mo"
                and (not source or e["source_addr"] == source)]

    # ---- waiting and process control ---------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` is true; it is re-checked whenever the SMSC prints an event."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                tail = "\n".join(json.dumps(e) for e in self.events[-15:])
                raise TimeoutError(f"SMSC condition not met within {timeout}s; last events:\n"
                                   f"{tail}\nstderr:\n{''.join(self.stderr[-20:])}")
            self._changed.clear()
            # on timeout, re-check: the predicate may depend on something besides SMSC output
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def _end(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            try:
                if sig is signal.SIGKILL:
                    os.kill(process.pid, signal.SIGCONT)  # a stopped process must die too
                process.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        for reader in self._readers:
            try:
                await asyncio.wait_for(reader, 5)
            except (TimeoutError, asyncio.CancelledError):
                reader.cancel()

    async def stop(self) -> None:
        """SIGTERM: the process exits at once, dropping every connection."""
        await self._end(signal.SIGTERM)

    async def kill(self) -> None:
        await self._end(signal.SIGKILL)

    async def restart(self) -> None:
        """Stop and start again on the same port with the same behaviour."""
        await self.stop()
        await self._spawn(self.port)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered, like a hung SMSC."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)


SmscFactory = Callable[..., Awaitable[Smsc]]


@pytest_asyncio.fixture
async def smsc_factory() -> AsyncIterator[SmscFactory]:
    """Fixture: `smsc = await smsc_factory(throttle=3)`; every SMSC started is killed after."""
    started: list[Smsc] = []

    async def factory(**kwargs: Any) -> Smsc:
        smsc = await Smsc.start(**kwargs)
        started.append(smsc)
        return smsc

    yield factory
    for smsc in started:
        await smsc.kill()
