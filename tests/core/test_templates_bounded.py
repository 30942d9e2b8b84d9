"""SMS templates in a bounded sandbox: bombs fail fast at check and send; a text costs one part."""

from __future__ import annotations

import time

import pytest

from ccshortlink.config.settings import DEFAULT_TEMPLATES
from ccshortlink.config.templatecheck import describe, template_costs
from ccshortlink.core.agents import Agent
from ccshortlink.core.links import SmsTemplates, check_templates, link_url
from ccshortlink.core.sandbox import TIME_LIMIT, TemplateLimitError
from ccshortlink.core.sms import DATA_CODING_UCS2, encode_sms

AGENT = Agent(id="CS1001", extensions=("1001",), name="王小梅", phone="+862088880000")

BOMBS = {
    "nested loops": "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}",
    "long string loops": "{% for c in 'x'*4000 %}{% for d in 'y'*4000 %}{% endfor %}{% endfor %}",
    "huge range": "{% for i in range(99999) %}{% endfor %}",
    "string product": "{{ 'x' * 10**9 }}",
    "list product": "{{ (range(9999)|list) * 9999 }}",
    "power": "{{ 10 ** 100000 }}",
    "squaring": "{% set ns = namespace(x=3) %}{% for i in range(99) %}{% set ns.x = ns.x * ns.x %}"
                "{% endfor %}{{ ns.x }}",
    "doubling with ~": "{% set ns = namespace(x='ab') %}{% for i in range(99) %}"
                       "{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
    "doubling blocks": "{% set x %}ab{% endset %}" + "{% set x %}{{x}}{{x}}{% endset %}" * 40,
    "wide filter": "{{ 'x'|center(10**9) }}",
    "wide format filter": "{{ '%0999999999d'|format(1) }}",
    "wide % format": "{{ '%0999999999d' % 1 }}",
    "wide str.format": "{{ '{:>999999999}'.format(1) }}",
    "wide method": "{{ 'x'.ljust(10**9) }}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
                         "{% endmacro %}{{ f(60) }}",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_bomb_is_cut_off_fast_at_send_time_too(name: str) -> None:
    templates = SmsTemplates({"zh-CN": "{{ url }}" + BOMBS[name]}, "zh-CN")
    # CPU time of this thread, as the sandbox's own budget counts it: a busy machine stretches
    # the wall clock, not the work a bomb is allowed to do.
    started = time.thread_time()
    with pytest.raises(TemplateLimitError):
        templates.render(AGENT, "https://cs.example.com/abcdefghj", "abcdefghj")
    # Four times the sandbox's budget (TIME_LIMIT): unwinding a deep macro after the cut-off
    # took 0.55 s of CPU once on a loaded machine; a bomb not cut off runs for hours.
    assert time.thread_time() - started < 4 * TIME_LIMIT
    [problem] = check_templates({"zh-CN": "{{ url }}" + BOMBS[name]}, "zh-CN")
    assert problem.startswith("[sms] template for 'zh-CN' fails to render: TemplateLimitError")


def test_python_stays_out_of_reach() -> None:
    for text in ("{{ ''.__class__.__mro__ }}", "{{ agent.__init__.__globals__ }}",
                 "{% set l = [1] %}{{ l.append(2) }}", "{{ lipsum(5) }}",
                 "{{ range.__self__ }}"):
        [problem] = check_templates({"en": "{{ url }}" + text}, "en")
        assert "fails to render" in problem, text


def test_the_link_must_be_in_the_text_not_just_the_source() -> None:
    for text in ("{# {{ url }} #}Hi", "{% if false %}{{ url }}{% endif %}Hi", "{{ url[:8] }}"):
        [problem] = check_templates({"en": text}, "en")
        assert problem.startswith("[sms] template for 'en' renders without the link"), text
    # spelt another way, the link is there: accepted
    assert check_templates({"en": "{{url}}", "fr": "{{ url|trim }}", "de": "{{ url ~ '' }}"},
                           "en") == []


def test_ordinary_templates_render_as_before() -> None:
    text = ("{% for word in ['a', 'b'] %}{{ loop.index }}{{ word|upper }}{% endfor %} "
            "{{ '%05d'|format(42) }} {{ agent.name ~ '/' ~ agent.id }} {{ 'ab' * 2 }} "
            "{{ '{}!'.format(agent.id) }} {{ 2 ** 10 }} {{ url }}")
    rendered = SmsTemplates({"en": text}, "en").render(AGENT, "https://x.cn/abc", "abc")
    assert rendered == "1A2B 00042 王小梅/CS1001 abab CS1001! 1024 https://x.cn/abc"


def test_the_default_zh_cn_text_is_one_ucs2_part_with_a_typical_link() -> None:
    # with a typical 5-character signature too: carriers in mainland China ask for one
    for signature in ("", "【云客服】"):
        templates = SmsTemplates(DEFAULT_TEMPLATES, "zh-CN", signatures={"*": signature})
        for code in ("a2B3c4D5e", "a2B3c4D5eF"):  # today's 9 characters, and room for a 10th
            text = templates.render(AGENT, link_url("https://cs.example.com/", code), code)
            sms = encode_sms(text, 1)
            assert sms.data_coding == DATA_CODING_UCS2 and len(sms.parts) == 1, (len(text), text)
            assert "王小梅" in text and "CS1001" in text and text.endswith("回TD退订")
            assert text.startswith(signature + "王小梅")


def test_costs_are_reported_and_a_long_default_text_is_a_warning() -> None:
    costs = template_costs({"zh-CN": "您好" * 30 + "{{ url }}", "en": DEFAULT_TEMPLATES["en"],
                            "xx": "{{ nope.x }}"}, "https://cs.example.com")
    lines, warnings = describe(costs, "zh-CN")
    assert lines == [
        "template en: 1 part, GSM 7-bit, 130 characters with a typical agent and link",
        "template zh-CN: 2 parts, UCS-2, 92 characters with a typical agent and link"]
    assert warnings == [("[sms] the zh-CN template (default language) needs 2 SMS parts: "
                         "each call is billed 2 times")]


def test_rendering_stays_cheap_per_sms() -> None:
    templates = SmsTemplates(DEFAULT_TEMPLATES, "zh-CN")
    started = time.thread_time()
    for _ in range(2000):
        templates.render(AGENT, "https://cs.example.com/abcdefghj", "abcdefghj")
    assert time.thread_time() - started < 1.0  # well under a millisecond each
