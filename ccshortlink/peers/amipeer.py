"""A small AMI server replaying recorded Asterisk transcript bytes over TCP (tests, bench, demo)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from contextlib import suppress

# The transcript helpers lived here first; tests, bench and demo import them from this module.
from ccshortlink.peers.originate import CallScript, callback_call, parse_action, response_frame
from ccshortlink.peers.transcript import (
    DEFAULT_BANNER,
    FIXTURE_AGENT,
    FIXTURE_CUSTOMER,
    TERMINATOR,
    event_name,
    interleave,
    read_transcript,
    rewrite_call,
    split_transcript,
)

__all__ = [
    "DEFAULT_BANNER", "FIXTURE_AGENT", "FIXTURE_CUSTOMER", "TERMINATOR", "AmiPeer", "event_name",
    "interleave", "read_transcript", "rewrite_call", "split_transcript",
]


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
                 filter_events: bool = False,
                 on_action: Callable[[dict[str, str]], None] | None = None) -> None:
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
        self.on_action = on_action  # told of every action a client sends (the demo prints it)
        self.originate_allowed = True  # Originate: queued, its call played; else refused
        self.answer_originate = True  # False: no Response (a stalled PBX), the call still plays
        self.call_script = CallScript.ANSWERED
        self.call_frame_delay = 0.005  # s between the call's events
        self.talk_seconds = 1.0  # s from the customer's answer (BridgeEnter) to the hangup
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
        self._locks: dict[asyncio.StreamWriter, asyncio.Lock] = {}
        self._calls: set[asyncio.Task[None]] = set()

    async def send_event(self, frame: bytes) -> None:
        """An event to every logged-in client now, as Asterisk tells every session."""
        for writer, lock in list(self._locks.items()):
            with suppress(ConnectionError):
                await self._write(writer, lock, frame)

    async def start(self, host: str = "127.0.0.1", port: int = 0, *,
                    tls: ssl.SSLContext | None = None) -> int:
        """Listen on host:port (0 = any free port), over TLS with `tls`; return the bound port.

        Over TLS a client is counted in `connections` only once its handshake has passed."""
        self._server = await asyncio.start_server(self._handle, host, port, ssl=tls)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close every client connection."""
        for call in list(self._calls):  # a call-back call still playing
            call.cancel()
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

    async def restart(self, frames: list[bytes]) -> None:
        """Become a new Asterisk: every session drops, and the next one is sent `frames`.

        As after a crash: what the old instance had not sent yet is never sent.
        """
        await self.disconnect_clients()  # first: an old session must not send the new frames
        self.frames = list(frames)
        self._position = 0

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
                action = parse_action(raw)
                self.actions.append(action)
                if self.on_action is not None:
                    self.on_action(action)
                self._notify()
                name = action.get("Action", "").lower()
                action_id = action.get("ActionID")
                if name == "login":
                    accepted = (not self.refuse_login and action.get("Username") == self.username
                                and action.get("Secret") == self.secret)
                    if not accepted:
                        self.failed_logins += 1
                        await self._write(writer, lock, response_frame(
                            "Error", action_id, Message="Authentication failed"))
                        break
                    await self._write(writer, lock, response_frame(
                        "Success", action_id, Message="Authentication accepted"))
                    self.logins += 1
                    self._locks[writer] = lock  # events for every session: send_event
                    self._notify()
                    if sender is None:
                        sender = asyncio.create_task(
                            self._send_frames(writer, lock, action.get("Events", "on")))
                elif name == "logoff":
                    await self._write(writer, lock, response_frame(
                        "Goodbye", action_id, Message="Thanks for all the fish."))
                    break
                elif sender is None:
                    await self._write(writer, lock, response_frame("Error", action_id,
                                                              Message="Permission denied"))
                elif name == "ping":
                    if self.answer_pings:
                        await self._write(writer, lock, response_frame(
                            "Success", action_id, Ping="Pong", Timestamp=f"{time.time():.6f}"))
                elif name == "originate":
                    await self._originate(writer, lock, action)
                else:
                    await self._write(writer, lock, response_frame(
                        "Error", action_id, Message="Invalid/unknown command"))
        except ConnectionError:
            pass
        finally:
            self._locks.pop(writer, None)
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            writer.close()
            with suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            self._writers.discard(writer)
            self._handlers.discard(task)
            self._notify()

    async def _originate(self, writer: asyncio.StreamWriter, lock: asyncio.Lock,
                         action: dict[str, str]) -> None:
        if not (allowed := self.originate_allowed) or self.answer_originate:
            await self._write(writer, lock, response_frame(
                "Success" if allowed else "Error", action.get("ActionID"),
                Message="Originate successfully queued" if allowed else "Permission denied"))
        if not allowed:
            return
        frames = callback_call(action, self.call_script)

        async def play() -> None:
            with suppress(ConnectionError):
                for frame, after in zip(frames, [*frames[1:], b""], strict=True):
                    await asyncio.sleep(self.call_frame_delay)
                    await self.send_event(frame)
                    if event_name(frame) == "BridgeEnter" != event_name(after):
                        await asyncio.sleep(self.talk_seconds)  # they talk
        self._calls.add(call := asyncio.create_task(play()))
        call.add_done_callback(self._calls.discard)

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
