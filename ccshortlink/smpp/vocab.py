"""SMPP vocabulary: command statuses, errors, delivery receipts and MO messages (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ccshortlink.app.ports import GatewayClosed, SubmitRejected
from ccshortlink.core.sms import decode_parts

__all__ = ["GatewayClosed", "SmppClosed", "SubmitRejected"]

SmppClosed = GatewayClosed  # the gateway's closed error, as this adapter has always named it

AUTH_FAILURES = frozenset({0x0D, 0x0E, 0x0F})  # bind failed, invalid password, invalid system_id
RETRY_LATER = frozenset({0x58, 0x14})  # throttled, message queue full: resend the same part
STATUS_SYSTEM_ERROR = 0x08
STATUS_INVALID_COMMAND = 0x03
# esm_class bits 2-5 give the message type: SMSC delivery receipt, intermediate notification.
RECEIPT_TYPES = frozenset({0x04, 0x20})
RECEIPT_STATES = ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "UNKNOWN", "DELETED",
                  "ENROUTE")
_STATE_BY_TLV = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
_STATE_ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "REJECTED": "REJECTD",
                  "ACCEPTED": "ACCEPTD"}
_RECEIPT_FIELD = re.compile(r"(?<![\w])(id|stat|err):(\S*)", re.IGNORECASE)


class SmppAuthError(Exception):
    """The SMSC refused our system_id/password: retrying will not help."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"SMSC refused the bind (status 0x{status:02X}): check system_id/password")


@dataclass(frozen=True)
class DeliveryReceipt:
    message_id: str
    state: str  # one of RECEIPT_STATES
    error_code: str
    text: str


@dataclass(frozen=True)
class MobileOriginated:
    source_addr: str
    destination_addr: str
    text: str


def parse_receipt(body: str, receipted_message_id: str = "",
                  message_state: int | None = None) -> DeliveryReceipt:
    """Read a receipt: TLVs when present, else the customary `id: stat: err: text:` body."""
    # Only the part before `text:` holds fields; the excerpt may contain anything.
    marker = re.search(r"text:", body, re.IGNORECASE)
    head, excerpt = (body[:marker.start()], body[marker.end():]) if marker else (body, "")
    fields = {key.lower(): value for key, value in _RECEIPT_FIELD.findall(head)}
    state = _STATE_BY_TLV.get(message_state or 0) or fields.get("stat", "").upper()
    state = _STATE_ALIASES.get(state, state)
    return DeliveryReceipt(
        message_id=receipted_message_id or fields.get("id", ""),
        state=state if state in RECEIPT_STATES else "UNKNOWN",
        error_code=fields.get("err", ""),
        text=excerpt,
    )


def pdu_text(value: Any) -> str:
    """A C-octet-string field of an smpplib PDU as text."""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\0")
    return "" if value is None else str(value)


def read_deliver_sm(pdu: Any) -> DeliveryReceipt | MobileOriginated | None:
    """What an smpplib deliver_sm carries: a receipt, an MO message, or None (SME ack)."""
    octets = pdu.short_message or getattr(pdu, "message_payload", None) or b""
    esm_class = pdu.esm_class or 0
    if esm_class & 0x3C in RECEIPT_TYPES:
        return parse_receipt(octets.decode("latin-1"), pdu_text(pdu.receipted_message_id),
                             pdu.message_state)
    if esm_class & 0x3C == 0:
        text = decode_parts(pdu.data_coding or 0, esm_class, [octets])
        return MobileOriginated(pdu_text(pdu.source_addr), pdu_text(pdu.destination_addr), text)
    return None  # SME acknowledgements: nothing here asks for them
