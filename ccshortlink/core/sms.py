"""SMS encoding: GSM 03.38 or UCS-2, split into concatenated parts with a 16-bit reference UDH."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DATA_CODING_GSM = 0x00  # SMSC default alphabet: GSM 03.38, one septet per octet (unpacked)
DATA_CODING_IA5 = 0x01
DATA_CODING_LATIN1 = 0x03
DATA_CODING_UCS2 = 0x08
ESM_CLASS_UDHI = 0x40

MAX_PARTS = 255

# GSM 03.38 default alphabet, indexed by septet value (0x1B is the escape, never a character).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_ESCAPE = 0x1B
# Extension table: character -> septet that follows the escape (each costs two septets).
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
                 "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}

_GSM_ENCODE = {char: bytes([septet]) for septet, char in enumerate(GSM_BASIC)
               if septet != GSM_ESCAPE}
_GSM_ENCODE.update({char: bytes([GSM_ESCAPE, septet]) for char, septet in GSM_EXTENSION.items()})
_GSM_DECODE_EXTENSION = {septet: char for char, septet in GSM_EXTENSION.items()}

# Single-message capacity: 140 octets of user data = 160 septets packed, or 70 UCS-2 units.
GSM_SINGLE_SEPTETS = 160
UCS2_SINGLE_UNITS = 70
# Concatenated parts carry UDH 06 08 04 RR RR NN II: 7 octets = 56 bits.
#   GSM-7: the SMSC packs our unpacked septets after the UDH. 56 bits are exactly 8 septets
#          (no fill bits needed), so a part holds 160 - 8 = 152 septets: 7 + ceil(152*7/8) = 140.
#   UCS-2: 140 - 7 = 133 octets remain; whole 2-octet units only, so 66 units (132 octets).
UDH_OCTETS = 7
GSM_PART_SEPTETS = GSM_SINGLE_SEPTETS - (UDH_OCTETS * 8 + 6) // 7
UCS2_PART_UNITS = (140 - UDH_OCTETS) // 2


@dataclass(frozen=True)
class EncodedSms:
    data_coding: int          # 0 = SMSC default alphabet (GSM 03.38), 8 = UCS-2 (UTF-16BE)
    esm_class: int            # 0x40 (UDHI) when parts carry a UDH, else 0
    parts: tuple[bytes, ...]  # each part's short_message octets, UDH included


def _gsm_tokens(text: str) -> list[bytes] | None:
    """One token per character (1 or 2 septets), or None if a character is not in GSM 03.38."""
    tokens = []
    for char in text:
        token = _GSM_ENCODE.get(char)
        if token is None:
            return None
        tokens.append(token)
    return tokens


def _ucs2_tokens(text: str) -> list[bytes]:
    # Characters outside the BMP become a surrogate pair: one 4-octet token, never split.
    return [char.encode("utf-16-be") for char in text]


def _payloads(tokens: list[bytes], single: int, per_part: int) -> list[bytes]:
    """One payload when the whole text fits a single SMS, else parts of whole tokens."""
    if sum(len(t) for t in tokens) <= single:
        return [b"".join(tokens)]
    return _pack(tokens, per_part)


def _pack(tokens: list[bytes], capacity: int) -> list[bytes]:
    """Greedily fill parts of `capacity` code units with whole tokens."""
    parts: list[bytes] = []
    current = bytearray()
    for token in tokens:
        if len(current) + len(token) > capacity:
            parts.append(bytes(current))
            current = bytearray()
        current += token
    parts.append(bytes(current))
    return parts


def encode_sms(text: str, reference: int) -> EncodedSms:
    """Encode `text` as one SMS, or as concatenated parts sharing `reference` (taken mod 2**16)."""
    gsm = _gsm_tokens(text)
    if gsm is not None:
        # One septet per octet, so capacities in septets are capacities in octets.
        data_coding, single, per_part = DATA_CODING_GSM, GSM_SINGLE_SEPTETS, GSM_PART_SEPTETS
        payloads = _payloads(gsm, single, per_part)
    else:
        data_coding = DATA_CODING_UCS2
        single, per_part = UCS2_SINGLE_UNITS * 2, UCS2_PART_UNITS * 2
        octets = text.encode("utf-16-be")
        if len(octets) == 2 * len(text):
            # No surrogate pairs: every character is one code unit, so any even cut is whole.
            payloads = [octets] if len(octets) <= single else [
                octets[i:i + per_part] for i in range(0, len(octets), per_part)]
        else:
            payloads = _payloads(_ucs2_tokens(text), single, per_part)
    if len(payloads) == 1:
        return EncodedSms(data_coding, 0, (payloads[0],))
    if len(payloads) > MAX_PARTS:
        raise ValueError(f"text needs {len(payloads)} SMS parts, at most {MAX_PARTS} are allowed")
    ref = reference & 0xFFFF
    total = len(payloads)
    parts = tuple(
        bytes([0x06, 0x08, 0x04, ref >> 8, ref & 0xFF, total, index]) + payload
        for index, payload in enumerate(payloads, start=1)
    )
    return EncodedSms(data_coding, ESM_CLASS_UDHI, parts)


def _decode_gsm(octets: bytes) -> str:
    chars = []
    escaped = False
    for septet in octets:
        septet &= 0x7F
        if escaped:
            # An unknown extension code shows the default-alphabet character (03.38 rule).
            chars.append(_GSM_DECODE_EXTENSION.get(septet, GSM_BASIC[septet]))
            escaped = False
        elif septet == GSM_ESCAPE:
            escaped = True
        else:
            chars.append(GSM_BASIC[septet])
    if escaped:
        chars.append(" ")
    return "".join(chars)


def strip_udh(esm_class: int, octets: bytes) -> bytes:
    """The user data of one short_message, without its UDH when UDHI is set."""
    if esm_class & ESM_CLASS_UDHI and octets:
        return octets[octets[0] + 1:]
    return octets


def decode_parts(data_coding: int, esm_class: int, parts: Sequence[bytes]) -> str:
    """Inverse of encode_sms for parts given in order; tolerant of other common codings."""
    payload = b"".join(strip_udh(esm_class, part) for part in parts)
    if data_coding == DATA_CODING_GSM:
        return _decode_gsm(payload)
    if data_coding == DATA_CODING_UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == DATA_CODING_IA5:
        return payload.decode("ascii", errors="replace")
    # Latin-1 (3) and anything unexpected: every octet maps to a character, nothing raises.
    return payload.decode("latin-1")


def septet_count(text: str) -> int | None:
    """GSM-7 length of `text` in septets (escapes count two), or None if it needs UCS-2."""
    tokens = _gsm_tokens(text)
    return None if tokens is None else sum(len(t) for t in tokens)
