"""SmscConnection's reads: PDUs coalesced in one segment, trickled byte by byte, or garbled."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from ccshortlink.config.settings import SmppConfig
from ccshortlink.ops.logs import get_logger
from ccshortlink.smpp.wire import LinkDown, Mailbox, SmscConnection

ENQUIRE_LINK, SUBMIT_SM_RESP = 0x00000015, 0x80000004


def pdu(command_id: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">LLLL", 16 + len(body), command_id, 0, sequence) + body


@pytest.fixture
def wire() -> Iterator[tuple[SmscConnection, socket.socket]]:
    """A connection to a bare TCP peer on 127.0.0.1 that writes whatever the test says."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = SmppConfig(host="127.0.0.1", port=port, system_id="ccshortlink", password="pw",
                        source_addr="CCShort", response_timeout=2.0)
    mailbox = Mailbox()
    connection = SmscConnection(config, mailbox, log=get_logger(), clock=time.monotonic)
    connection.connect()
    peer, _ = listener.accept()
    try:
        yield connection, peer
    finally:
        connection.hang_up()
        peer.close()
        listener.close()
        mailbox.close()


def test_pdus_in_one_segment_are_read_with_one_read(
        wire: tuple[SmscConnection, socket.socket]) -> None:
    connection, peer = wire
    peer.sendall(pdu(ENQUIRE_LINK, 1) + pdu(SUBMIT_SM_RESP, 2, b"5f3a\0") + pdu(ENQUIRE_LINK, 3))
    assert connection.wait(2.0) == (True, False)
    first = connection.read()
    # The other two are already in hand: nothing is left unread in the socket.
    sock = connection._client._socket
    timeout = sock.gettimeout()
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(1, socket.MSG_PEEK)
    sock.settimeout(timeout)
    assert connection.wait(0.0) == (True, False)
    second, third = connection.read(), connection.read()
    assert [(p.command, p.sequence) for p in (first, second, third)] == [
        ("enquire_link", 1), ("submit_sm_resp", 2), ("enquire_link", 3)]
    assert second.message_id == b"5f3a"


def test_a_pdu_trickling_in_is_taken_once_whole(
        wire: tuple[SmscConnection, socket.socket]) -> None:
    connection, peer = wire
    data = pdu(SUBMIT_SM_RESP, 7, b"abc\0")
    seen = []
    for i in range(len(data)):
        peer.sendall(data[i:i + 1])
        assert connection.wait(2.0)[0]
        seen.append(connection.read())
    assert seen[:-1] == [None] * (len(data) - 1)
    assert (seen[-1].command, seen[-1].sequence, seen[-1].message_id) == (
        "submit_sm_resp", 7, b"abc")


def test_a_garbled_length_drops_the_link_after_the_answers_before_it(
        wire: tuple[SmscConnection, socket.socket]) -> None:
    connection, peer = wire
    good = pdu(SUBMIT_SM_RESP, 1, b"a1\0") + pdu(SUBMIT_SM_RESP, 2, b"a2\0")
    peer.sendall(good + struct.pack(">L", 3) + b"\0" * 12)
    assert connection.wait(2.0)[0]
    # Both answers are handed out first: their parts must not be resent as unanswered.
    assert [connection.read().sequence, connection.read().sequence] == [1, 2]
    assert connection.wait(0.0)[0]
    with pytest.raises(LinkDown, match="malformed PDU"):
        connection.read()


def test_the_smsc_closing_drops_the_link(wire: tuple[SmscConnection, socket.socket]) -> None:
    connection, peer = wire
    peer.sendall(pdu(ENQUIRE_LINK, 1)[:10])
    peer.close()
    assert connection.wait(2.0)[0]
    assert connection.read() is None  # half a PDU so far
    assert connection.wait(2.0)[0]
    with pytest.raises(LinkDown, match="closed by the SMSC"):
        connection.read()
