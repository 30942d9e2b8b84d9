"""The live test's own AMI connection (a privileged user): boot, call progress, transfers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

from tests.support.netns import Loopback

Frame = dict[str, str]


def parse(raw: bytes) -> Frame:
    frame: Frame = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            frame.setdefault(name.strip(), value.strip())
    return frame


class AmiAdmin:
    """Reads every event into `events`; sends actions and returns their response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self.events: list[Frame] = []
        self._responses: dict[str, asyncio.Future[Frame]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def login(cls, net: Loopback, port: int, username: str, secret: str) -> AmiAdmin:
        reader, writer = await net.connect(port)
        try:
            await asyncio.wait_for(reader.readline(), 5)  # "Asterisk Call Manager/…"
        except BaseException:
            writer.close()
            raise
        admin = cls(reader, writer)
        answer = await admin.action("Login", Username=username, Secret=secret)
        if answer.get("Response") != "Success":
            await admin.close()
            raise AssertionError(f"AMI login as {username} refused: {answer}")
        return admin

    async def _read(self) -> None:
        try:
            while True:
                raw = await self._reader.readuntil(b"\r\n\r\n")
                frame = parse(raw)
                action_id = frame.get("ActionID")
                if "Response" in frame and action_id in self._responses:
                    self._responses.pop(action_id).set_result(frame)
                elif "Event" in frame:
                    self.events.append(frame)
                self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for future in self._responses.values():
                if not future.done():
                    future.set_exception(EOFError("AMI connection closed"))
            self._changed.set()

    async def action(self, name: str, **headers: str) -> Frame:
        action_id = f"test-{next(self._ids)}"
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._responses[action_id] = future
        lines = [f"Action: {name}", f"ActionID: {action_id}",
                 *(f"{key}: {value}" for key, value in headers.items())]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        return await asyncio.wait_for(future, 10)

    def named(self, event: str, **fields: str) -> list[Frame]:
        return [e for e in self.events if e.get("Event") == event
                and all(e.get(k) == v for k, v in fields.items())]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._task.done():
                    raise AssertionError("the admin AMI connection closed")
                self._changed.clear()
                await self._changed.wait()

    async def wait_event(self, event: str, count: int = 1, timeout: float = 20.0,
                         **fields: str) -> Frame:
        """The `count`-th event of that name (and those field values) since login."""
        await self.wait_for(lambda: len(self.named(event, **fields)) >= count, timeout)
        return self.named(event, **fields)[count - 1]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
