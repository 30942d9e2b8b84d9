"""Plumbing of the SMPP I/O thread: its mailbox from the loop, one blocking smpplib connection."""

from __future__ import annotations

import asyncio
import os
import queue
import select
import socket
import struct
from collections.abc import Callable
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from ccshortlink.config import SmppConfig
from ccshortlink.logs import Logger

# Whatever a peer can send that smpplib fails to parse; the stream stays in step (read whole).
_UNPARSABLE = (smpplib.exceptions.UnknownCommandError, smpplib.exceptions.PDUError, KeyError,
               ValueError, IndexError, TypeError, struct.error)


class LinkDown(Exception):
    """The current connection is unusable; the message says why."""


def describe(exc: BaseException) -> str:
    cause = exc.__context__ if str(exc) in ("", "Connection refused") and exc.__context__ else exc
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Complete `future` with `error` or `result` unless it is done already (on the loop)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Mailbox:
    """Requests from the loop to the I/O thread: a queue, and a pipe whose byte wakes select()."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)

    def put(self, *request: Any) -> None:
        """Queue a request and wake the I/O thread (any thread)."""
        self._requests.put(request)
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (already awake) or closed (thread gone)

    def take(self) -> tuple[Any, ...] | None:
        try:
            return self._requests.get_nowait()
        except queue.Empty:
            return None

    def clear_wakeups(self) -> None:
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        for fd in (self.wake_fd, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.wake_fd = self._wake_w = -1


class SmscConnection:
    """One smpplib client: blocking connect, send, read and select; any failure is LinkDown."""

    def __init__(self, config: SmppConfig, mailbox: Mailbox, *, log: Logger,
                 clock: Callable[[], float]) -> None:
        self._mailbox = mailbox
        self._log = log
        self._clock = clock
        self._client = smpplib.client.Client(config.host, config.port,
                                             timeout=config.response_timeout,
                                             allow_unknown_opt_params=True)
        self.last_heard = 0.0  # when a PDU last arrived

    def connect(self) -> None:
        try:
            self._client.connect()
        except smpplib.exceptions.ConnectionError as exc:
            raise LinkDown(f"connect failed: {describe(exc)}") from None
        # A window of small PDUs must not wait on Nagle's algorithm for the previous one's ACK.
        self._client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def make(self, command: str, **fields: Any) -> Any:
        """A new PDU with the next sequence number."""
        return smpplib.smpp.make_pdu(command, client=self._client, **fields)

    def wait(self, timeout: float) -> tuple[bool, bool]:
        """Wait for the SMSC or the mailbox: (a PDU is ready to read, the mailbox was woken)."""
        sock = self._client._socket  # smpplib has no public accessor; needed for select()
        wake_fd = self._mailbox.wake_fd
        readable, _, _ = select.select([sock, wake_fd], [], [], max(0.0, timeout))
        return sock in readable, wake_fd in readable

    def send(self, pdu: Any) -> None:
        try:
            self._client.send_pdu(pdu)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError) as exc:
            raise LinkDown(f"send failed: {describe(exc)}") from None

    def respond(self, command: str, sequence: int, status: int = 0) -> None:
        pdu = self.make(command, status=status)
        pdu.sequence = sequence
        self.send(pdu)

    def read(self) -> Any:
        """The next PDU, or None for one smpplib cannot parse (logged)."""
        try:
            pdu = self._client.read_pdu()
        except smpplib.exceptions.ConnectionError:
            raise LinkDown("connection closed by the SMSC") from None
        except socket.timeout:
            raise LinkDown("incomplete PDU from the SMSC") from None
        except _UNPARSABLE as exc:
            self._log.warning("smpp_unparsable_pdu", error=str(exc))
            return None
        self.last_heard = self._clock()
        return pdu

    def hang_up(self) -> None:
        # smpplib warns when closing from any state but OPEN; a dead link is routine here.
        self._client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN
        self._client.disconnect()
