"""GSM-7/UCS-2 choice, part limits and concatenation UDH of ccshortlink.core.sms."""

from __future__ import annotations

import random

import pytest

from ccshortlink.core.sms import (
    DATA_CODING_GSM,
    DATA_CODING_UCS2,
    ESM_CLASS_UDHI,
    GSM_BASIC,
    GSM_EXTENSION,
    decode_parts,
    encode_sms,
    septet_count,
    strip_udh,
)

CHINESE_TEMPLATE = ("您好，刚才为您服务的是张三（工号1001）。下次可直接联系TA："
                    "https://cc.example.com/k7Hq2mXp 回TD退订")


def payloads(sms):
    return [strip_udh(sms.esm_class, part) for part in sms.parts]


def roundtrip(text: str, reference: int = 1) -> str:
    sms = encode_sms(text, reference)
    return decode_parts(sms.data_coding, sms.esm_class, sms.parts)


def test_ascii_link_text_is_one_gsm_sms_with_one_octet_per_character():
    text = "Thanks for calling. Reach Alice again: https://cc.example.com/k7Hq2mXp"
    sms = encode_sms(text, 1)
    assert sms.data_coding == DATA_CODING_GSM
    assert sms.esm_class == 0
    assert len(sms.parts) == 1
    assert len(sms.parts[0]) == len(text)  # unpacked septets, no UDH
    assert sms.parts[0].startswith(b"Thanks for calling.")


def test_gsm_specific_characters_use_gsm_codes_not_ascii():
    sms = encode_sms("@£$_", 1)
    assert sms.parts[0] == bytes([0x00, 0x01, 0x02, 0x11])


@pytest.mark.parametrize("char, escaped", [("€", 0x65), ("{", 0x28), ("}", 0x29), ("[", 0x3C),
                                           ("]", 0x3E), ("\\", 0x2F), ("~", 0x3D), ("|", 0x40),
                                           ("^", 0x14)])
def test_extension_characters_cost_two_septets(char, escaped):
    sms = encode_sms(f"a{char}b", 1)
    assert sms.data_coding == DATA_CODING_GSM
    assert sms.parts[0] == bytes([0x61, 0x1B, escaped, 0x62])
    assert septet_count(char) == 2


def test_chinese_text_goes_ucs2_big_endian():
    sms = encode_sms("您好", 1)
    assert sms.data_coding == DATA_CODING_UCS2
    assert sms.parts == ("您好".encode("utf-16-be"),)


def test_one_non_gsm_character_makes_the_whole_message_ucs2():
    sms = encode_sms("Hello Zoë", 1)  # ë is not in GSM 03.38 (é and ö are)
    assert sms.data_coding == DATA_CODING_UCS2
    assert encode_sms("Hello Zoé, Jörg", 1).data_coding == DATA_CODING_GSM


@pytest.mark.parametrize("length, parts", [(160, 1), (161, 2), (304, 2), (305, 3)])
def test_gsm_single_and_concatenated_boundaries(length, parts):
    sms = encode_sms("x" * length, 1)
    assert len(sms.parts) == parts
    if parts > 1:
        assert [len(p) for p in payloads(sms)][:-1] == [152] * (parts - 1)
        assert all(len(p) <= 7 + 152 for p in sms.parts)


def test_escapes_count_double_at_the_single_sms_boundary():
    assert len(encode_sms("x" * 158 + "€", 1).parts) == 1  # 158 + 2 = 160 septets
    assert len(encode_sms("x" * 159 + "€", 1).parts) == 2  # 161 septets


@pytest.mark.parametrize("length, parts", [(70, 1), (71, 2), (132, 2), (133, 3)])
def test_ucs2_single_and_concatenated_boundaries(length, parts):
    sms = encode_sms("中" * length, 1)
    assert len(sms.parts) == parts
    if parts > 1:
        assert [len(p) for p in payloads(sms)][:-1] == [132] * (parts - 1)
        assert all(len(p) <= 140 for p in sms.parts)  # 7 UDH + 133 user data, fits one SMS


def test_udh_is_16_bit_reference_with_total_and_index():
    sms = encode_sms("中" * 140, 0xBEEF)
    assert sms.esm_class == ESM_CLASS_UDHI
    assert [part[:7] for part in sms.parts] == [
        bytes([0x06, 0x08, 0x04, 0xBE, 0xEF, 3, 1]),
        bytes([0x06, 0x08, 0x04, 0xBE, 0xEF, 3, 2]),
        bytes([0x06, 0x08, 0x04, 0xBE, 0xEF, 3, 3]),
    ]


def test_reference_wraps_to_16_bits_so_callers_can_keep_counting():
    sms = encode_sms("x" * 200, 0x1_0005)
    assert sms.parts[0][3:5] == b"\x00\x05"


def test_emoji_on_a_part_boundary_is_never_split():
    # 65 units of Chinese then an emoji (2 units) would straddle the 66-unit boundary.
    text = "中" * 65 + "😀" + "中" * 10
    sms = encode_sms(text, 1)
    first, second = payloads(sms)
    assert first == ("中" * 65).encode("utf-16-be")  # only 130 octets: the pair moved on
    assert second.startswith("😀".encode("utf-16-be"))
    for payload in payloads(sms):
        payload.decode("utf-16-be")  # every part is valid UTF-16 on its own
    assert decode_parts(sms.data_coding, sms.esm_class, sms.parts) == text


def test_gsm_escape_on_a_part_boundary_is_never_split():
    text = "x" * 151 + "€" + "y" * 20  # the escape would be septet 152, its code septet 153
    sms = encode_sms(text, 1)
    first, second = payloads(sms)
    assert first == b"x" * 151
    assert second.startswith(b"\x1b\x65")
    assert not first.endswith(b"\x1b")
    assert decode_parts(sms.data_coding, sms.esm_class, sms.parts) == text


def test_too_long_for_255_parts_is_refused():
    assert len(encode_sms("x" * 152 * 255, 1).parts) == 255
    with pytest.raises(ValueError, match="255"):
        encode_sms("x" * (152 * 255 + 1), 1)


def test_empty_text_is_one_empty_sms():
    sms = encode_sms("", 1)
    assert sms.parts == (b"",) and sms.esm_class == 0
    assert decode_parts(sms.data_coding, sms.esm_class, sms.parts) == ""


def test_real_sms_templates_roundtrip():
    english = ("Thanks for calling. You spoke with Alice (ID 1001). Reach them again: "
               "https://cc.example.com/k7Hq2mXp Reply STOP to opt out")
    for text in (CHINESE_TEMPLATE, english, CHINESE_TEMPLATE * 3, english * 4):
        assert roundtrip(text) == text


def test_random_strings_roundtrip():
    rng = random.Random(20240601)
    gsm_pool = [c for c in GSM_BASIC if c != "\x1b"] + list(GSM_EXTENSION)
    wide_pool = gsm_pool + list("您好退订工号中文") + ["😀", "👍🏽", "𝄞", "ë", "ß"]
    for _ in range(400):
        pool = rng.choice([gsm_pool, wide_pool])
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 420)))
        sms = encode_sms(text, rng.randint(0, 0xFFFF))
        assert decode_parts(sms.data_coding, sms.esm_class, sms.parts) == text
        limit = 160 if sms.data_coding == DATA_CODING_GSM else 140
        single_ok = len(sms.parts) == 1 and len(sms.parts[0]) <= limit
        udh_ok = all(len(p) <= (7 + 152 if limit == 160 else 140) for p in sms.parts)
        assert single_ok or (sms.esm_class == ESM_CLASS_UDHI and udh_ok)


def test_decode_tolerates_other_codings_seen_in_mobile_originated_messages():
    assert decode_parts(0x01, 0, [b"TD"]) == "TD"
    assert decode_parts(0x03, 0, ["Zoë".encode("latin-1")]) == "Zoë"
    assert decode_parts(0x08, 0, ["退订".encode("utf-16-be")]) == "退订"
