"""vCard 3.0 rendering: folding, escaping, names, phone values, inline photos."""

from __future__ import annotations

import base64

from ccshortlink.core.agents import Agent
from ccshortlink.core.vcard import (
    dial_string,
    escape_text,
    fold,
    name_parts,
    photo_type,
    render_vcard,
    vcard_filename,
)
from tests.support.cardkit import png


def agent(**overrides: object) -> Agent:
    fields: dict[str, object] = {"id": "CS1001", "extensions": ("1001",), "name": "王芳",
                                 "phone": "+862088880000,,1001", "title": "高级客服专员"}
    fields.update(overrides)
    return Agent(**fields)  # type: ignore[arg-type]


def unfold(text: str) -> str:
    return text.replace("\r\n ", "")


def test_short_lines_are_not_folded() -> None:
    assert fold("FN:Alice") == "FN:Alice"
    assert fold("N:" + "a" * 73) == "N:" + "a" * 73  # exactly 75 octets


def test_long_lines_fold_at_75_octets_and_unfold_to_the_original() -> None:
    line = "NOTE:" + "x" * 300
    folded = fold(line)
    physical = folded.split("\r\n")
    assert len(physical) == 5
    assert all(len(p.encode()) <= 75 for p in physical)
    assert all(p.startswith(" ") for p in physical[1:])
    assert unfold(folded) == line


def test_folding_never_splits_a_chinese_character() -> None:
    line = "NOTE:" + "服务热线说明" * 30  # 3 octets each: boundaries fall mid-character
    folded = fold(line)
    for physical in folded.split("\r\n"):
        encoded = physical.encode("utf-8")  # would raise on a split character
        assert len(encoded) <= 75
    assert unfold(folded) == line


def test_text_values_are_escaped() -> None:
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    card = render_vcard(agent(name="Li, Lei; Jr.", title="A\nB"), company="Acme, Inc.",
                        note="ID CS1001")
    lines = unfold(card).split("\r\n")
    assert "FN:Li\\, Lei\\; Jr." in lines
    assert "ORG:Acme\\, Inc." in lines
    assert "TITLE:A\\nB" in lines


def test_name_parts_for_western_and_chinese_names() -> None:
    assert name_parts("Alice Wang") == ("Wang", "Alice")
    assert name_parts("Mary Ann Smith") == ("Smith", "Mary Ann")
    assert name_parts("王芳") == ("王", "芳")
    assert name_parts("Cher") == ("Cher", "")


def test_dial_strings_keep_pauses_and_extensions() -> None:
    assert dial_string("+862088880000,,1001") == "+862088880000,,1001"
    assert dial_string("+86 20 8888-0000;ext=1001") == "+862088880000,1001"
    assert dial_string("(020) 8888 0000") == "02088880000"


def test_card_layout_and_line_endings() -> None:
    card = render_vcard(agent(), company="Example Telecom", note="工号 CS1001")
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n")
    assert card.endswith("END:VCARD\r\n")
    assert "\n" not in card.replace("\r\n", "")
    lines = card.split("\r\n")
    assert "N:王;芳;;;" in lines and "FN:王芳" in lines and "TITLE:高级客服专员" in lines
    assert "TEL;TYPE=WORK,VOICE:+862088880000,,1001" in lines
    assert "NOTE:工号 CS1001" in lines and "ORG:Example Telecom" in lines
    assert not any(line.startswith("PHOTO") for line in lines)


def test_empty_company_and_title_are_left_out() -> None:
    card = render_vcard(agent(title=""), company="", note="n")
    assert "ORG:" not in card and "TITLE:" not in card


def test_png_and_jpeg_photos_are_inlined_others_are_not() -> None:
    image = png(8, 8)
    card = render_vcard(agent(), company="", note="n", photo=image)
    photo = next(line for line in unfold(card).split("\r\n") if line.startswith("PHOTO"))
    assert photo.startswith("PHOTO;ENCODING=b;TYPE=PNG:")
    assert base64.b64decode(photo.split(":", 1)[1]) == image
    assert all(len(line.encode()) <= 75 for line in card.split("\r\n"))
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 20
    assert "TYPE=JPEG:" in unfold(render_vcard(agent(), company="", note="n", photo=jpeg))
    assert photo_type(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert "PHOTO" not in render_vcard(agent(), company="", note="n", photo=b"GIF89a....")


def test_file_name_is_the_cs_id_made_safe() -> None:
    assert vcard_filename(agent()) == "CS1001.vcf"
    assert vcard_filename(agent(id='CS 1/"2"')) == "CS_1__2_.vcf"
