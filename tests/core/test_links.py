"""Code minting and SMS text rendering."""

from __future__ import annotations

import math

from ccshortlink.config.settings import DEFAULT_TEMPLATES
from ccshortlink.core.agents import Agent
from ccshortlink.core.links import (
    ALPHABET,
    CODE_BITS,
    SmsTemplates,
    check_templates,
    is_code,
    link_url,
    new_code,
)

AGENT = Agent(id="CS1001", extensions=("1001",), name="王小梅", phone="+862088880000")


def test_codes_are_unguessable_and_free_of_look_alikes() -> None:
    assert CODE_BITS >= 45
    assert not set("0O1lIio") & set(ALPHABET)
    codes = {new_code() for _ in range(20_000)}
    assert len(codes) == 20_000
    assert all(is_code(c) for c in codes)
    # every symbol is used, roughly uniformly (a biased generator would lose entropy)
    counts = {c: 0 for c in ALPHABET}
    for code in codes:
        for ch in code:
            counts[ch] += 1
    expected = sum(counts.values()) / len(ALPHABET)
    assert all(abs(n - expected) < 6 * math.sqrt(expected) for n in counts.values())


def test_injected_choice_makes_codes_reproducible() -> None:
    assert new_code(lambda alphabet: alphabet[0]) == ALPHABET[0] * 9
    assert not is_code("abc") and not is_code("0" * 9)


def test_sms_text_carries_the_url_and_picks_the_language() -> None:
    templates = SmsTemplates(DEFAULT_TEMPLATES, "zh-CN")
    url = link_url("https://cs.example.com/", "abcdefghj")
    assert url == "https://cs.example.com/abcdefghj"
    text = templates.render(AGENT, url, "abcdefghj")
    assert url in text and "王小梅" in text and "CS1001" in text
    english = Agent(id="CS2", extensions=("2",), name="Dan", phone="1", language="en")
    assert templates.render(english, url, "x").startswith("Thanks for calling")
    # no agent language: the customer's country decides
    plain = Agent(id="CS3", extensions=("3",), name="Ann", phone="1")
    assert templates.language_for(plain, "US") == "en"
    assert templates.language_for(plain, "CN") == "zh-CN"


def test_templates_cannot_reach_python_and_errors_show_at_start() -> None:
    assert check_templates({"zh-CN": "{{ url }} {{ agent.nope }}"}, "zh-CN")
    assert check_templates({"zh-CN": "{{ url }} {{ ''.__class__.__mro__ }}"}, "zh-CN")
    assert check_templates({"zh-CN": "{% if %}"}, "zh-CN")
    assert check_templates(DEFAULT_TEMPLATES, "zh-CN") == []
