"""The AMI adapter's test kit: recorded frames, a recording handler, a peer serving them."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ccshortlink.ami.client import AmiClient, AmiProtocol
from ccshortlink.config.settings import AmiConfig
from ccshortlink.ops.logs import get_logger
from ccshortlink.peers.amipeer import AmiPeer, read_transcript

FIXTURES = Path(__file__).parent.parent / "fixtures"
NAMES = sorted(p.name for p in FIXTURES.glob("*.txt"))
USER, SECRET = "ccshortlink", "s3cret-for-tests"
WANG = "王小梅"


def frames_of(name: str) -> list[bytes]:
    return read_transcript(FIXTURES / name)[1]


def expected_events(frames: list[bytes]) -> list[dict[str, str]]:
    """What the client must deliver: each Event frame's headers, read independently."""
    events = []
    for frame in frames:
        lines = frame.decode("utf-8").split("\r\n")
        event = dict(line.split(": ", 1) for line in lines if ": " in line)
        if "Event" in event:
            events.append(event)
    return events


def with_caller_name(frames: list[bytes], name: str) -> list[bytes]:
    """The customer's Newchannel/Newstate frames carrying a non-ASCII caller name."""
    old = b"CallerIDName: +8613800138000\r\n"
    return [f.replace(old, f"CallerIDName: {name}\r\n".encode()) for f in frames]


def ami_config(port: int, **overrides: Any) -> AmiConfig:
    settings: dict[str, Any] = dict(ping_interval=0.3, ping_timeout=0.3, reconnect_max=0.1)
    settings.update(overrides)
    return AmiConfig(host="127.0.0.1", port=port, username=USER, secret=SECRET, **settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def named(logs: Iterable[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `condition` holds; the deadline is only a safety net, never the assertion."""
    async with asyncio.timeout(timeout):
        # a condition on plain values has no event to wait on: polled, 10 ms apart
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class Recorder:
    """on_event / on_state that remember what they were given."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.events: list[dict[str, str]] = []
        self.states: list[tuple[bool, float]] = []
        self.fail_on = fail_on

    def __call__(self, event: dict[str, str]) -> None:
        if event["Event"] == self.fail_on:
            raise RuntimeError(f"handler cannot cope with {self.fail_on}")
        self.events.append(event)

    def on_state(self, connected: bool) -> None:
        self.states.append((connected, asyncio.get_running_loop().time()))

    async def wait_for(self, count: int) -> None:
        await eventually(lambda: len(self.events) >= count)


class CountingRandom(random.Random):
    """Counts scheduled retries (each draws one jitter value)."""

    retries = 0

    def uniform(self, a: float, b: float) -> float:
        self.retries += 1
        return super().uniform(a, b)


@asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        yield task
    finally:
        stop.set()
        async with asyncio.timeout(2.5):  # run() promises to be gone within 2 s
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def serving(frames: list[bytes], port: int = 0, *, tls: ssl.SSLContext | None = None,
                  **options: Any) -> AsyncIterator[tuple[AmiPeer, int]]:
    """A replay peer on `port`, over TLS with the server context `tls`."""
    peer = AmiPeer(frames, username=USER, secret=SECRET, **options)
    port = await peer.start(port=port, tls=tls)
    try:
        yield peer, port
    finally:
        await peer.stop()


class FakeTransport:
    """Stands in for the socket when bytes are fed to the protocol by hand."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def fed(chunks: list[bytes], on_event: Callable[[dict[str, str]], Any] | None = None
        ) -> tuple[list[dict[str, str]], AmiProtocol]:
    events: list[dict[str, str]] = []
    protocol = AmiProtocol(on_event or events.append, get_logger())
    protocol.connection_made(FakeTransport())
    for chunk in chunks:
        protocol.data_received(chunk)
    return events, protocol


def cut(stream: bytes, size: int) -> list[bytes]:
    return [stream[i:i + size] for i in range(0, len(stream), size)]
