"""Hypothesis properties: number masking in any text, and SMS encoding of any text."""

from __future__ import annotations

import math
import re

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ccshortlink.core.privacy import mask_text
from ccshortlink.core.sms import (
    DATA_CODING_GSM,
    DATA_CODING_UCS2,
    ESM_CLASS_UDHI,
    GSM_BASIC,
    GSM_EXTENSION,
    GSM_PART_SEPTETS,
    GSM_SINGLE_SEPTETS,
    UCS2_PART_UNITS,
    UCS2_SINGLE_UNITS,
    decode_parts,
    encode_sms,
    septet_count,
    strip_udh,
)

FAST = settings(max_examples=200, deadline=None)
VISIBLE_RUN = 5  # mask_number shows at most 5 leading and 4 trailing digits together

# --- number masking -----------------------------------------------------------------------

# How people write numbers: one separator throughout, groups as on a business card.
_GROUPINGS = ((), (3, 4, 4), (3, 3, 4), (4, 4), (2, 4, 4), (3, 8), (4, 3, 4), (2, 3, 3, 3))


def _layout(digits: str, grouping: tuple[int, ...], separator: str) -> str:
    if not grouping or sum(grouping) > len(digits):
        return digits
    groups, at = [], 0
    for size in grouping[:-1]:
        groups.append(digits[at:at + size])
        at += size
    groups.append(digits[at:])
    return separator.join(groups)


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(the digits, the number as written): E.164 or national, spaced, dashed, dotted."""
    national = draw(st.from_regex(r"1[3-9][0-9]{9}|0[1-9][0-9]{8,10}|[2-9][0-9]{9}",
                                  fullmatch=True))
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    written = _layout(national, draw(st.sampled_from(_GROUPINGS)), separator or " ")
    if not separator:
        written = national
    country = draw(st.sampled_from(["", "86", "1", "44", "852"]))
    digits = country + national.lstrip("0") if country else national
    if country:
        national_part = _layout(national.lstrip("0"), draw(st.sampled_from(_GROUPINGS)),
                                separator or " ") if separator else national.lstrip("0")
        style = draw(st.sampled_from(["+{c}{n}", "+{c} {n}", "(+{c}) {n}", "+{c}-{n}"]))
        written = style.format(c=country, n=national_part)
    return digits, written


# Text around the number: anything but decimal digits (a digit next to a number makes
# another, longer number; that is tested below with digits allowed).
_NO_DIGITS = st.text(st.characters(exclude_categories=("Nd", "Cs")), max_size=40)


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


def _runs(text: str) -> str:
    """The digits of `text` as one stream, separators and brackets dropped, masks kept."""
    return re.sub(r"[ .()+\-]", "", text)


@FAST
@given(written_numbers(), _NO_DIGITS, _NO_DIGITS)
@example(("8613800138000", "(+86) 138 0013 8000"), "GET /", "?x")
@example(("13800138000", "138-0013-8000"), "2026-11-23 ", " 10.0.0.1")
def test_no_run_of_a_number_survives_masking(number: tuple[str, str], before: str,
                                             after: str) -> None:
    digits, written = number
    # the one documented exception: a dotted quad of octets is an IPv4 address, shown
    assume(not _IPV4.fullmatch(written))
    masked = mask_text(before + written + after)
    stream = _runs(masked)
    for start in range(len(digits) - VISIBLE_RUN):
        assert digits[start:start + VISIBLE_RUN + 1] not in stream, (written, masked)
    assert mask_text(masked) == masked


@FAST
@given(written_numbers(), st.text(max_size=30), st.text(max_size=30))
def test_the_full_number_never_survives_whatever_surrounds_it(
        number: tuple[str, str], before: str, after: str) -> None:
    digits, written = number
    assume(not _IPV4.fullmatch(written))
    assume(digits not in _runs(before) and digits not in _runs(after))
    masked = mask_text(before + written + after)
    assert digits not in _runs(masked) and written not in masked


_DENSE = st.text(st.sampled_from("0123456789 -.()+:Tx"), max_size=60)


@FAST
@given(st.one_of(st.text(max_size=80), _DENSE))
def test_masking_is_idempotent_and_keeps_everything_but_digits(text: str) -> None:
    masked = mask_text(text)
    assert mask_text(masked) == masked
    assert len(masked) == len(text)
    # only digits ever change, and only into '*'
    assert all(a == b or (a.isdigit() and b == "*") for a, b in zip(text, masked, strict=True))
    # no 7 digits in a row are left anywhere
    assert not re.search(r"\d{7}", masked) or re.search(r"\d{9,10}\.\d", masked)


# --- SMS encoding -------------------------------------------------------------------------

_GSM_CHARS = sorted((set(GSM_BASIC) - {"\x1b"}) | set(GSM_EXTENSION))
_TEXTS = st.one_of(
    st.text(max_size=700),
    st.text(st.sampled_from(_GSM_CHARS), max_size=700),
    st.text(st.sampled_from(_GSM_CHARS + ["€", "[", "é", "王", "😀"]), max_size=400),
)


def _udh(part: bytes) -> tuple[int, int, int]:
    assert part[:3] == bytes([0x06, 0x08, 0x04])  # UDHL 6, IEI 8 (16-bit ref), length 4
    return (part[3] << 8) | part[4], part[5], part[6]


@FAST
@given(_TEXTS, st.integers(min_value=0, max_value=2**20))
@example("a" * 161, 1)
@example("€" * 80 + "a", 7)
@example("😀" * 34, 9)
def test_any_text_encodes_within_limits_and_decodes_back(text: str, reference: int) -> None:
    sms = encode_sms(text, reference)
    gsm = all(char in _GSM_CHARS for char in text)
    assert (sms.data_coding == DATA_CODING_GSM) is gsm
    assert (septet_count(text) is not None) is gsm
    if not gsm:
        assert sms.data_coding == DATA_CODING_UCS2
    assert decode_parts(sms.data_coding, sms.esm_class, sms.parts) == text

    # the size each part may have, and the size the whole text needs
    if gsm:
        units, single, per_part, unit = septet_count(text), GSM_SINGLE_SEPTETS, \
            GSM_PART_SEPTETS, 1
    else:
        units, single, per_part, unit = len(text.encode("utf-16-be")) // 2, \
            UCS2_SINGLE_UNITS, UCS2_PART_UNITS, 2
    assert units is not None
    payloads = [strip_udh(sms.esm_class, part) for part in sms.parts]
    if units <= single:
        assert len(sms.parts) == 1 and sms.esm_class == 0
        assert len(payloads[0]) == units * unit
        return
    assert sms.esm_class == ESM_CLASS_UDHI
    # no part over its capacity (UDH 7 octets: 140 octets packed), none split a character
    for part, payload in zip(sms.parts, payloads, strict=True):
        assert 0 < len(payload) <= per_part * unit
        if gsm:
            assert 7 + math.ceil(len(payload) * 7 / 8) <= 140
        else:
            assert len(part) <= 140
        standalone = decode_parts(sms.data_coding, 0, [payload])
        assert standalone and standalone in text  # whole characters: escapes, surrogates
    # the count: every part but the last is as full as whole characters allow
    count = len(sms.parts)
    assert math.ceil(units / per_part) <= count <= math.ceil(units / (per_part - 1))
    assert [_udh(part) for part in sms.parts] == [
        (reference & 0xFFFF, count, index) for index in range(1, count + 1)]
    assert "".join(decode_parts(sms.data_coding, 0, [p]) for p in payloads) == text
