"""The one smpplib user: a blocking SMPP connection for the I/O thread; any failure is LinkDown."""

from __future__ import annotations

import select
import socket
import ssl
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from ccshortlink.config.settings import SmppConfig
from ccshortlink.config.tls import TlsConfig
from ccshortlink.core.describe import describe as describe_exception
from ccshortlink.core.sms import EncodedSms
from ccshortlink.ops.logs import Logger
from ccshortlink.ops.tls import client_context, describe_tls_failure
from ccshortlink.smpp.mailbox import Mailbox

__all__ = ["LinkDown", "Mailbox", "SmscConnection", "describe"]

_READ_SIZE = 1 << 16
_MIN_PDU = 16  # the header alone
_MAX_PDU = 1 << 20  # far above any real PDU (a 64 KiB message_payload): a garbled length

# Whatever a peer can send that smpplib fails to parse; the stream stays in step (read whole).
_UNPARSABLE = (smpplib.exceptions.UnknownCommandError, smpplib.exceptions.PDUError, KeyError,
               ValueError, IndexError, TypeError, struct.error)


class LinkDown(Exception):
    """The current connection is unusable; the message says why."""


def describe(exc: BaseException) -> str:
    """The exception, or what caused it when smpplib wrapped it with no detail of its own."""
    cause = exc.__context__ if str(exc) in ("", "Connection refused") and exc.__context__ else exc
    return describe_tls_failure(cause) or describe_exception(cause)


class _TlsWrapper:
    """What smpplib is handed as its ssl_context: it wraps the socket without a server name,
    so the name could not be checked; this adds the configured one."""

    def __init__(self, tls: TlsConfig) -> None:
        self._tls = tls

    def wrap_socket(self, raw: socket.socket) -> ssl.SSLSocket:
        # The handshake runs in smpplib's connect(): the bind is sent only after it passed.
        return client_context(self._tls).wrap_socket(raw, server_hostname=self._tls.server_name)


class SmscConnection:
    """One smpplib client: blocking connect, send, read and select; any failure is LinkDown."""

    def __init__(self, config: SmppConfig, mailbox: Mailbox, *, log: Logger,
                 clock: Callable[[], float]) -> None:
        self._config = config
        self._mailbox = mailbox
        self._log = log
        self._clock = clock
        self._client = smpplib.client.Client(
            config.host, config.port, timeout=config.response_timeout,
            allow_unknown_opt_params=True,
            ssl_context=_TlsWrapper(config.tls) if config.tls is not None else None)
        self.last_heard = 0.0  # when bytes last arrived
        self._inbox = bytearray()  # the start of a PDU not yet whole
        self._parsed: deque[Any] = deque()  # PDUs read but not yet taken
        self._broken: str | None = None  # the stream is out of step: why, once _parsed is empty

    @property
    def _socket(self) -> socket.socket:
        """smpplib's socket: it has no public accessor, and select(), the one-call write of a
        window and the whole-buffer read all need it (the only use of its internals)."""
        sock: socket.socket = self._client._socket
        return sock

    def connect(self) -> None:
        try:
            self._client.connect()
        except smpplib.exceptions.ConnectionError as exc:
            raise LinkDown(f"connect failed: {describe(exc)}") from None
        # A window of small PDUs must not wait on Nagle's algorithm for the previous one's ACK.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def tls_fields(self) -> dict[str, object]:
        """For the bound line: the TLS version in use and whether the SMSC was checked."""
        sock, tls = self._socket, self._config.tls
        if tls is None or not isinstance(sock, ssl.SSLSocket):
            return {}
        return {"tls": sock.version() or "on", "tls_verified": tls.verify}

    def make(self, command: str, **fields: Any) -> Any:
        """A new PDU with the next sequence number."""
        return smpplib.smpp.make_pdu(command, client=self._client, **fields)

    def make_submit_sm(self, destination: str, sms: EncodedSms, index: int) -> Any:
        """The submit_sm of part `index` of `sms`, from our source address (config)."""
        config = self._config
        return self.make(
            "submit_sm",
            source_addr_ton=config.source_addr_ton, source_addr_npi=config.source_addr_npi,
            source_addr=config.source_addr,
            dest_addr_ton=1, dest_addr_npi=1,  # international, E.164
            destination_addr=destination.lstrip("+"),
            esm_class=sms.esm_class, data_coding=sms.data_coding,
            registered_delivery=1 if config.registered_delivery else 0,
            short_message=sms.parts[index])

    def wait(self, timeout: float) -> tuple[bool, bool]:
        """Wait for the SMSC or the mailbox: (a PDU is ready to read, the mailbox was woken)."""
        if self._parsed or self._broken:
            return True, False  # already read: the mailbox is looked at on the next turn
        sock = self._socket
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True, False  # decrypted already: select() would not see it
        wake_fd = self._mailbox.wake_fd
        watched: list[socket.socket | int] = [sock, wake_fd]
        readable, _, _ = select.select(watched, [], [], max(0.0, timeout))
        return sock in readable, wake_fd in readable

    def send(self, pdu: Any) -> None:
        self.send_many([pdu])

    def send_many(self, pdus: Sequence[Any]) -> None:
        """Write PDUs with one system call (a window's worth of submit_sm goes out together)."""
        # smpplib's send_pdu formats a hex dump of every PDU for its debug log even when that
        # is off; the bytes are the same, so write them here.
        data = b"".join(pdu.generate() for pdu in pdus)
        try:
            self._socket.sendall(data)
        except (OSError, smpplib.exceptions.PDUError) as exc:
            raise LinkDown(f"send failed: {describe(exc)}") from None

    def respond(self, command: str, sequence: int, status: int = 0) -> None:
        pdu = self.make(command, status=status)
        pdu.sequence = sequence
        self.send(pdu)

    def read(self) -> Any:
        """The next PDU, or None when none is whole yet or it cannot be parsed (logged).

        One recv takes whatever the SMSC has sent, however many PDUs that is, instead of two
        reads per PDU: each system call lets go of the interpreter lock, and getting it back
        from a busy event loop costs far more than the read.
        """
        if not self._parsed:
            if self._broken:
                # Only now: the answers read before the garbage are handed out first, so
                # their parts are not resent as if unanswered.
                raise LinkDown(self._broken)
            self._fill()
        return self._parsed.popleft() if self._parsed else None

    def _fill(self) -> None:
        try:
            data = self._receive()
        except TimeoutError:
            raise LinkDown("the SMSC stopped sending mid-PDU") from None
        except OSError as exc:
            raise LinkDown(f"read failed: {describe(exc)}") from None
        if data is None:
            return
        if not data:
            raise LinkDown("connection closed by the SMSC")
        self.last_heard = self._clock()
        self._inbox += data
        while len(self._inbox) >= 4:
            (length,) = struct.unpack_from(">L", self._inbox)
            if not _MIN_PDU <= length <= _MAX_PDU:
                self._broken = f"malformed PDU: length {length}"
                break
            if len(self._inbox) < length:
                break
            raw = bytes(self._inbox[:length])
            del self._inbox[:length]
            try:
                pdu = smpplib.smpp.parse_pdu(raw, client=self._client,
                                             allow_unknown_opt_params=True)
            except _UNPARSABLE as exc:  # the stream stays in step: the PDU was read whole
                self._log.warning("smpp_unparsable_pdu", error=str(exc))
                continue
            if not pdu.is_error() and pdu.command in smpplib.consts.STATE_SETTERS:
                self._client.state = smpplib.consts.STATE_SETTERS[pdu.command]
            self._parsed.append(pdu)

    def _receive(self) -> bytes | None:
        """What the SMSC sent; None when a TLS socket was readable but held no data yet."""
        sock = self._socket
        if not isinstance(sock, ssl.SSLSocket):
            return sock.recv(_READ_SIZE)
        # A readable TLS socket may hold only part of a record, or a record with no data (a
        # session ticket): a blocking read would then wait for the SMSC's next PDU.
        sock.setblocking(False)
        try:
            return sock.recv(_READ_SIZE)
        except ssl.SSLWantReadError:
            return None
        finally:
            sock.settimeout(self._config.response_timeout)

    def hang_up(self) -> None:
        # smpplib warns when closing from any state but OPEN; a dead link is routine here.
        self._client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN
        self._client.disconnect()
