"""A small AMI server replaying recorded Asterisk transcript bytes over TCP (tests, bench, demo)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

DEFAULT_BANNER = b"Asterisk Call Manager/9.0.0\r\n"
TERMINATOR = b"\r\n\r\n"
# Who the recorded calls in tests/fixtures are between.
FIXTURE_CUSTOMER = "+8613800138000"
FIXTURE_AGENT = "1001"

_ID_HEADER = re.compile(r"(?i).*(uniqueid|linkedid)")
_ASTERISK_ID = re.compile(r"\d+\.\d+")
# tech/resource-XXXXXXXX, optionally followed by ;1/;2 for the halves of a Local channel
_CHANNEL = re.compile(r"(?P<name>[A-Za-z][\w]*/[^\s,;|]+?)-(?P<suffix>[0-9a-f]{8})(?![0-9A-Za-z])")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Epoch part of rewritten ids: later than any recording, and distinct per call index.
_ID_EPOCH = 1_800_000_000


def split_transcript(raw: bytes) -> tuple[bytes, list[bytes]]:
    """The banner line (with its CRLF) and the frames after it, minus login reply and Goodbye."""
    banner, sep, rest = raw.partition(b"\r\n")
    if not sep or not banner.startswith(b"Asterisk Call Manager/"):
        raise ValueError("not an AMI transcript: no Asterisk Call Manager banner")
    pieces = rest.split(TERMINATOR)
    if pieces[-1].strip():
        raise ValueError("transcript ends in the middle of a frame")
    frames = [piece + TERMINATOR for piece in pieces[:-1]]
    if frames and frames[0].startswith(b"Response:"):
        frames.pop(0)  # the recorded session's own login
    if frames and frames[-1].startswith(b"Response: Goodbye"):
        frames.pop()
    return banner + sep, frames


def read_transcript(path: str | Path) -> tuple[bytes, list[bytes]]:
    """split_transcript() of a transcript file."""
    return split_transcript(Path(path).read_bytes())


def event_name(frame: bytes) -> str | None:
    """The Event header of a frame, or None for a Response."""
    for line in frame.split(b"\r\n"):
        if line.startswith(b"Event: "):
            return line[7:].decode("utf-8", "replace")
    return None


def rewrite_call(frames: list[bytes], *, index: int, customer_number: str | None = None,
                 agent_extension: str | None = None, original_customer: str = FIXTURE_CUSTOMER,
                 original_agent: str = FIXTURE_AGENT) -> list[bytes]:
    """A new, distinct call made from a recorded one: fresh ids, channels and bridges for `index`.

    The same `index` always gives the same bytes; different indexes never share an id.
    """
    agent_token = re.compile(rf"(?<![0-9A-Za-z.]){re.escape(original_agent)}(?![0-9A-Za-z])")
    ids: dict[str, str] = {}
    suffixes: dict[str, str] = {}

    def new_id(old: str) -> str:
        return ids.setdefault(old, f"{_ID_EPOCH + index}.{len(ids)}")

    def new_suffix(match: re.Match[str]) -> str:
        old = match.group("suffix")
        # high bit set: never equal to a recorded suffix (Asterisk counts up from 0)
        fresh = f"{(0x80000000 + index * 0x100 + len(suffixes)) % 0x100000000:08x}"
        return f"{match.group('name')}-{suffixes.setdefault(old, fresh)}"

    def new_uuid(match: re.Match[str]) -> str:
        digest = hashlib.sha256(f"{index}:{match.group(0)}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def rewrite_value(name: str, value: str) -> str:
        if agent_extension is not None:
            value = agent_token.sub(agent_extension, value)
        if customer_number is not None:
            value = value.replace(original_customer, customer_number)
        value = _CHANNEL.sub(new_suffix, value)
        if _ID_HEADER.fullmatch(name) and _ASTERISK_ID.fullmatch(value):
            value = new_id(value)
        return _UUID.sub(new_uuid, value)

    rewritten = []
    for frame in frames:
        # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged
        lines = frame.decode("utf-8", "surrogateescape").split("\r\n")
        out = []
        for line in lines:
            name, sep, value = line.partition(": ")
            out.append(f"{name}{sep}{rewrite_value(name, value)}" if sep else line)
        rewritten.append("\r\n".join(out).encode("utf-8", "surrogateescape"))
    return rewritten


def interleave(calls: list[list[bytes]], seed: int) -> list[bytes]:
    """One stream from several calls, each call's frames kept in order; same seed, same stream."""
    rng = random.Random(seed)
    positions = [0] * len(calls)
    remaining = [len(call) for call in calls]
    stream: list[bytes] = []
    while any(remaining):
        # weighting by what is left makes every interleaving equally likely
        which = rng.choices(range(len(calls)), weights=remaining)[0]
        stream.append(calls[which][positions[which]])
        positions[which] += 1
        remaining[which] -= 1
    return stream


def _parse_action(raw: bytes) -> dict[str, str]:
    action: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            action[name.strip()] = value.strip()
    return action


def _response(status: str, action_id: str | None, **headers: str) -> bytes:
    lines = [f"Response: {status}"]
    if action_id is not None:
        lines.append(f"ActionID: {action_id}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _event_classes(frame: bytes) -> set[str] | None:
    for line in frame.split(b"\r\n"):
        if line.startswith(b"Privilege: "):
            return set(line[11:].decode().split(",")) - {"all"}
    return None


class AmiPeer:
    """Accepts AMI clients, checks their login, answers Ping/Logoff and replays `frames` to each."""

    def __init__(self, frames: list[bytes], *, username: str, secret: str,
                 banner: bytes = DEFAULT_BANNER, chunk_size: int | None = None,
                 frame_delay: float = 0.0, refuse_login: bool = False,
                 drop_after_frames: int | None = None, answer_pings: bool = True,
                 hold_open: bool = True, replay_on_reconnect: bool = True,
                 filter_events: bool = False) -> None:
        """`replay_on_reconnect=False` resumes a new connection where the last one stopped;
        `filter_events=True` sends only the event classes asked for in the login's Events header,
        as Asterisk does."""
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.frames = list(frames)
        self.username = username
        self.secret = secret
        self.banner = banner
        self.chunk_size = chunk_size
        self.frame_delay = frame_delay
        self.refuse_login = refuse_login
        self.drop_after_frames = drop_after_frames
        self.answer_pings = answer_pings  # may be flipped while running
        self.hold_open = hold_open
        self.replay_on_reconnect = replay_on_reconnect
        self.filter_events = filter_events
        # What clients did, for asserts.
        self.connections = 0
        self.logins = 0
        self.failed_logins = 0
        self.actions: list[dict[str, str]] = []
        self.frames_sent = 0
        self.replays_completed = 0
        self._position = 0  # next frame to send when not replaying from the start
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Event()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = any free port); return the bound port."""
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close every client connection."""
        if self._server is not None:
            self._server.close()
        # Closing the sockets lets each handler end on its own: asyncio's stream server logs
        # an error for a handler task that is cancelled, so that is only the last resort.
        for ending in (asyncio.StreamWriter.close, lambda w: w.transport.abort()):
            for writer in list(self._writers):
                ending(writer)
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=1.0)
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> AmiPeer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def disconnect_clients(self) -> None:
        """Close every current connection, as an Asterisk restart would; keep listening."""
        for writer in list(self._writers):
            writer.close()
        await self.wait_for(lambda: not self._writers, 5.0)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `condition()` holds (checked whenever the peer's state changes)."""
        async with asyncio.timeout(timeout):
            while not condition():
                changed = self._changed
                await changed.wait()

    async def wait_for_login(self, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: self.logins >= count, timeout)

    async def wait_done(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until the whole frame list has been sent `count` times."""
        await self.wait_for(lambda: self.replays_completed >= count, timeout)

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    def actions_named(self, name: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action", "").lower() == name.lower()]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        self._notify()
        lock = asyncio.Lock()  # a Ping answer must never land inside a chunked frame
        sender: asyncio.Task[None] | None = None
        try:
            await self._write(writer, lock, self.banner)
            while True:
                try:
                    raw = await reader.readuntil(TERMINATOR)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    break
                action = _parse_action(raw)
                self.actions.append(action)
                self._notify()
                name = action.get("Action", "").lower()
                action_id = action.get("ActionID")
                if name == "login":
                    accepted = (not self.refuse_login and action.get("Username") == self.username
                                and action.get("Secret") == self.secret)
                    if not accepted:
                        self.failed_logins += 1
                        await self._write(writer, lock, _response(
                            "Error", action_id, Message="Authentication failed"))
                        break
                    await self._write(writer, lock, _response(
                        "Success", action_id, Message="Authentication accepted"))
                    self.logins += 1
                    self._notify()
                    if sender is None:
                        sender = asyncio.create_task(
                            self._send_frames(writer, lock, action.get("Events", "on")))
                elif name == "logoff":
                    await self._write(writer, lock, _response(
                        "Goodbye", action_id, Message="Thanks for all the fish."))
                    break
                elif sender is None:
                    await self._write(writer, lock, _response("Error", action_id,
                                                              Message="Permission denied"))
                elif name == "ping":
                    if self.answer_pings:
                        await self._write(writer, lock, _response(
                            "Success", action_id, Ping="Pong", Timestamp=f"{time.time():.6f}"))
                else:
                    await self._write(writer, lock, _response(
                        "Error", action_id, Message="Invalid/unknown command"))
        except ConnectionError:
            pass
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            writer.close()
            with suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            self._writers.discard(writer)
            self._handlers.discard(task)
            self._notify()

    async def _write(self, writer: asyncio.StreamWriter, lock: asyncio.Lock, data: bytes) -> None:
        async with lock:
            if self.chunk_size is None:
                writer.write(data)
                await writer.drain()
                return
            for start in range(0, len(data), self.chunk_size):
                writer.write(data[start:start + self.chunk_size])
                await writer.drain()
                await asyncio.sleep(0)  # let the reader see this chunk on its own

    def _wanted(self, frame: bytes, events: str) -> bool:
        if not self.filter_events or event_name(frame) in (None, "FullyBooted"):
            return True  # responses, and FullyBooted which Asterisk writes straight after login
        wanted = events.strip().lower()
        if wanted in ("on", "yes", "all", "true"):
            return True
        classes = _event_classes(frame)
        return bool(classes and classes & {c.strip() for c in wanted.split(",")})

    async def _send_frames(self, writer: asyncio.StreamWriter, lock: asyncio.Lock,
                           events: str) -> None:
        sent_here = 0
        try:
            first = 0 if self.replay_on_reconnect else self._position
            for position in range(first, len(self.frames)):
                if self.drop_after_frames is not None and sent_here >= self.drop_after_frames:
                    writer.close()  # mid-replay: a new connection resumes or restarts
                    return
                frame = self.frames[position]
                if self._wanted(frame, events):
                    if self.frame_delay and sent_here:
                        await asyncio.sleep(self.frame_delay)
                    await self._write(writer, lock, frame)
                    sent_here += 1
                    self.frames_sent += 1
                self._position = position + 1
                self._notify()
            self.replays_completed += 1
            self._notify()
            if not self.hold_open or self.drop_after_frames == sent_here:
                writer.close()
        except ConnectionError:
            writer.close()
