"""A tiny SMPP server for `ccshortlink demo`: accepts binds and submits, prints each SMS."""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ccshortlink.core.sms import ESM_CLASS_UDHI, decode_parts

BIND_COMMANDS = {0x00000001, 0x00000002, 0x00000009}  # receiver, transmitter, transceiver
SUBMIT_SM = 0x00000004
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015
GENERIC_NACK = 0x80000000
RESPONSE = 0x80000000


@dataclass(frozen=True)
class SinkSms:
    """One whole SMS as the sink received it (parts reassembled)."""

    source: str
    destination: str
    data_coding: int
    parts: int
    text: str


def _cstring(body: bytes, offset: int) -> tuple[str, int]:
    end = body.index(b"\0", offset)
    return body[offset:end].decode("latin-1"), end + 1


def _parse_submit(body: bytes) -> tuple[str, str, int, int, bytes]:
    _, offset = _cstring(body, 0)  # service_type
    offset += 2
    source, offset = _cstring(body, offset)
    offset += 2
    destination, offset = _cstring(body, offset)
    esm_class = body[offset]
    offset += 3
    _, offset = _cstring(body, offset)  # schedule_delivery_time
    _, offset = _cstring(body, offset)  # validity_period
    offset += 2
    data_coding = body[offset]
    length = body[offset + 2]
    message = body[offset + 3:offset + 3 + length]
    return source, destination, esm_class, data_coding, message


class SmsSink:
    """Answers like an SMSC on 127.0.0.1 and hands every reassembled SMS to `on_sms`."""

    def __init__(self, on_sms: Callable[[SinkSms], None]) -> None:
        self.on_sms = on_sms
        self.received: list[SinkSms] = []
        self._ids = itertools.count(1)
        self._partial: dict[tuple[str, bytes], dict[int, bytes]] = {}
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._session, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                length, command, _, sequence = struct.unpack(">IIII", header)
                body = await reader.readexactly(length - 16)
                if command & RESPONSE:
                    continue  # a response to something we sent (we send nothing)
                reply, answer = b"", command | RESPONSE
                if command in BIND_COMMANDS:
                    reply = b"demo-smsc\0"
                elif command == SUBMIT_SM:
                    reply = f"demo-{next(self._ids)}\0".encode()
                    self._accept(*_parse_submit(body))
                elif command not in (ENQUIRE_LINK, UNBIND):
                    answer = GENERIC_NACK
                writer.write(struct.pack(">IIII", 16 + len(reply), answer, 0, sequence) + reply)
                await writer.drain()
                if command == UNBIND:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # A forced stop cancels the session: end quietly, or asyncio's stream callback
            # (Python 3.11) asks the cancelled task for its exception and logs a traceback.
            pass
        finally:
            writer.close()

    def _accept(self, source: str, destination: str, esm_class: int, data_coding: int,
                message: bytes) -> None:
        if not esm_class & ESM_CLASS_UDHI:
            self._emit(SinkSms(source, destination, data_coding, 1,
                               decode_parts(data_coding, esm_class, [message])))
            return
        # UDH 06 08 04 RR RR NN II (16-bit reference) or 05 00 03 RR NN II (8-bit).
        udh = message[:message[0] + 1]
        total, index = udh[-2], udh[-1]
        key = (destination, udh[2:-2])
        parts = self._partial.setdefault(key, {})
        parts[index] = message
        if len(parts) == total:
            del self._partial[key]
            ordered = [parts[i] for i in sorted(parts)]
            self._emit(SinkSms(source, destination, data_coding, total,
                               decode_parts(data_coding, esm_class, ordered)))

    def _emit(self, sms: SinkSms) -> None:
        self.received.append(sms)
        self.on_sms(sms)
