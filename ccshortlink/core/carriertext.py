"""What carriers ask of every text: the sender's signature first, an opt-out hint, its cost."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ccshortlink.core.sms import (
    DATA_CODING_UCS2,
    GSM_PART_SEPTETS,
    GSM_SINGLE_SEPTETS,
    UCS2_PART_UNITS,
    UCS2_SINGLE_UNITS,
    encode_sms,
    septet_count,
)

# The hint each default text ends with; `[sms] opt_out_hint` changes it. The other common
# mainland wording is 拒收请回复R (R is an opt-out word by default).
DEFAULT_OPT_OUT_HINTS = {"zh-CN": "回TD退订", "en": "Reply STOP to opt out"}


def for_language(table: Mapping[str, str], language: str) -> str:
    """The entry for `language`, else for its base language (zh-TW finds zh-CN), else ''."""
    if language in table:
        return table[language]
    base = language.split("-", 1)[0]
    for other, value in table.items():
        if other.split("-", 1)[0] == base:
            return value
    return table.get("*", "")


def closest_language(wanted: str, languages: Collection[str], default: str) -> str:
    """`wanted` when there is a text in it, else one in its base language (zh-TW finds
    zh-CN), else `default`: how every kind of SMS picks its text."""
    if wanted in languages:
        return wanted
    base = wanted.split("-", 1)[0]
    for language in languages:
        if base and language.split("-", 1)[0] == base:
            return language
    return default


def sign(text: str, signature: str) -> str:
    """`text` starting with the signature: added once (a text that already starts with it is
    left alone), with a space only between two Latin characters (`[Acme] Hi`, `【云客服】您好`)."""
    signature = signature.strip()
    if not signature or text.startswith(signature):
        return text
    gap = " " if signature[-1].isascii() and text[:1].isascii() and text[:1].isalnum() else ""
    return f"{signature}{gap}{text}"


@dataclass(frozen=True)
class SmsCost:
    """What one text costs: its encoding, length in the encoding's units and parts."""

    encoding: str  # "GSM 7-bit" or "UCS-2"
    units: int  # septets (GSM-7, an escaped character counts two) or UTF-16 code units
    parts: int
    single_capacity: int  # what one SMS holds in those units (160 or 70)
    part_capacity: int  # what each part of a longer one holds (152 or 66)


def sms_cost(text: str) -> SmsCost:
    """The cost exactly as `encode_sms` will split it."""
    encoded = encode_sms(text, 0)
    parts = len(encoded.parts)
    septets = septet_count(text)
    if encoded.data_coding != DATA_CODING_UCS2 and septets is not None:
        return SmsCost("GSM 7-bit", septets, parts, GSM_SINGLE_SEPTETS, GSM_PART_SEPTETS)
    return SmsCost("UCS-2", len(text.encode("utf-16-be")) // 2, parts, UCS2_SINGLE_UNITS,
                   UCS2_PART_UNITS)
