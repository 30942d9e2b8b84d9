"""Replies as people type them, and the texts carriers ask for: pure functions and config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccshortlink.config.advice import check_report
from ccshortlink.config.settings import ConfigError, load_config
from ccshortlink.core.carriertext import sign, sms_cost
from ccshortlink.core.replywords import (
    AUTO_REPLY_INTERVAL,
    classify_reply,
    may_answer,
    normalise_reply,
)
from ccshortlink.core.vocab import ReplyKind
from tests.support.configfile import write_config

WORDS = {"opt_out_words": ("STOP", "TD", "T", "退订", "R", "UNSUBSCRIBE"),
         "opt_in_words": ("START", "订阅"), "help_words": ("HELP", "帮助", "客服")}


@pytest.mark.parametrize("text", [" Td。", "td!", "退订 ", "ＴＤ", "Ｔ　Ｄ", "\tSTOP\n", "«stop»",
                                  "Stop.", "退订！", "【退订】", "T-D", "r", "unsubscribe 😀"])
def test_opt_out_as_typed(text: str) -> None:
    assert classify_reply(text, **WORDS) == ReplyKind.OPT_OUT


@pytest.mark.parametrize(("text", "kind"), [
    ("Start", ReplyKind.OPT_IN), ("订阅。", ReplyKind.OPT_IN), ("help?", ReplyKind.HELP),
    ("帮助", ReplyKind.HELP), (" 客服 ", ReplyKind.HELP), ("ＨＥＬＰ", ReplyKind.HELP),
    # a sentence that merely contains a word is not that word
    ("please stop", ReplyKind.OTHER), ("我要退订吗", ReplyKind.OTHER), ("stopp", ReplyKind.OTHER),
    ("thanks, the agent was great", ReplyKind.OTHER), ("", ReplyKind.OTHER),
    ("。。。", ReplyKind.OTHER), ("tdtd", ReplyKind.OTHER)])
def test_other_words_and_sentences(text: str, kind: ReplyKind) -> None:
    assert classify_reply(text, **WORDS) == kind


def test_configured_words_are_normalised_too() -> None:
    assert classify_reply("ｑｕｉｔ", opt_out_words=[" Quit! "], opt_in_words=[],
                          help_words=[]) == ReplyKind.OPT_OUT
    # a word in two lists opts out: the safe side
    assert classify_reply("x", opt_out_words=["X"], opt_in_words=["x"],
                          help_words=[]) == ReplyKind.OPT_OUT


@settings(max_examples=200, deadline=None)
@given(word=st.sampled_from(["TD", "退订", "START", "帮助", "stop"]),
       before=st.text(" \t\u3000.,!?。，！？、…~～-「」【】()（）", max_size=4),
       after=st.text(" \t\u3000.,!?。，！？、…~～-「」【】()（）", max_size=4))
def test_padding_never_changes_what_a_word_means(word: str, before: str, after: str) -> None:
    assert classify_reply(before + word + after, **WORDS) == classify_reply(word, **WORDS)
    assert normalise_reply(normalise_reply(before + word)) == normalise_reply(word)


def test_one_answer_per_hour() -> None:
    assert may_answer(None, 1000.0)
    assert not may_answer(1000.0, 1000.0 + AUTO_REPLY_INTERVAL - 1)
    assert may_answer(1000.0, 1000.0 + AUTO_REPLY_INTERVAL)


def test_the_signature_goes_first_once() -> None:
    assert sign("您好", "【云客服】") == "【云客服】您好"
    assert sign("【云客服】您好", "【云客服】") == "【云客服】您好"  # pasted in already
    assert sign("Hello", "[Acme]") == "[Acme] Hello"
    assert sign("Hello", " ") == "Hello"
    cost = sms_cost(sign("x" * 155, "[Acme]"))  # 6 + 2 for the escaped [ ] + 1 + 155
    assert (cost.encoding, cost.units, cost.parts) == ("GSM 7-bit", 164, 2)


def test_config_reads_signature_hint_words_and_answers(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, sms={
        "signature": "【云客服】", "opt_out_hint": "拒收请回复R", "help_words": ["HELP", "?"],
        "opt_in_confirmation": {"en": "Welcome back. {{ opt_out_hint }}"}}))
    carrier = config.sms.carrier
    assert carrier.signature == "【云客服】" and carrier.help_words == ("HELP", "?")
    assert carrier.opt_out_hints["zh-CN"] == "拒收请回复R"  # a text: the default language's
    assert carrier.replies["opt_in_confirmation"]["en"] == "Welcome back. {{ opt_out_hint }}"
    assert carrier.replies["opt_in_confirmation"]["zh-CN"].startswith("您已恢复")  # default kept
    lines, warnings = check_report(config)
    # the default zh-CN text carries the new hint through {{ opt_out_hint }}
    assert "template zh-CN: 1 part, UCS-2, 69 characters with a typical agent and link" in lines
    assert not [w for w in warnings if "opt out" in w or "no signature" in w]
    # a config without the new keys: the texts as before, no signature
    (tmp_path / "plain").mkdir()
    plain = load_config(write_config(tmp_path / "plain"))
    assert plain.sms.carrier.signature == "" and plain.sms.carrier.help_words == (
        "HELP", "帮助", "客服")


def test_check_config_warns_about_carrier_texts(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, sms={
        "signature": "【云客服】",
        "templates": {"zh-CN": "【云客服】{{ agent.name }}：{{ url }}【云客服】",
                      "en": "Call {{ agent.name }} again: {{ url }}",
                      "zh-TW": "再次聯繫{{ agent.name }}：{{ url }}" + "謝謝" * 20}}))
    _, warnings = check_report(config)
    assert ("[sms] the zh-CN template holds the signature 【云客服】 itself: it is added at the "
            "start of every SMS, remove it from the template") in warnings
    assert ("[sms] the zh-CN template does not say how to opt out ('回TD退订'): put "
            "{{ opt_out_hint }} in it") in warnings
    assert any(w.startswith("[sms] the en template does not say how to opt out") for w in warnings)
    # zh-TW borrows zh-CN's hint and misses it; with the signature it no longer fits
    assert any(w.startswith("[sms] the zh-TW template needs 2 SMS parts") for w in warnings)
    unsigned = load_config(write_config(tmp_path, sms={"templates": {}}))
    assert any("no signature for zh-CN: carriers in mainland China require" in w
               for w in check_report(unsigned)[1])


def test_check_config_costs_the_missed_call_texts_as_sent(tmp_path: Path) -> None:
    config = load_config(write_config(
        tmp_path, web={"hotline": "400-820-8820"}, policy={"missed_call_sms": True},
        sms={"signature": "【云客服】", "missed_call_templates": {
            "zh-CN": "抱歉未能接听您的来电，请您方便时拨打我们的客服热线{{ hotline }}再次联系我们，"
                     "我们将竭诚为您服务，感谢您一直以来的理解与支持。"}}))
    lines, warnings = check_report(config)
    assert any(line.startswith("missed_call zh-CN: 2 parts, UCS-2") for line in lines)
    assert "[sms] the missed_call_templates text for zh-CN needs 2 SMS parts with the " \
        "signature" in warnings
    assert ("[sms] the missed_call_templates text for zh-CN does not say how to opt out "
            "('回TD退订'): put {{ opt_out_hint }} in it") in warnings
    # the shipped English text, signed with 【】, is UCS-2 and no longer fits one part
    assert "[sms] the missed_call_templates text for en needs 2 SMS parts with the " \
        "signature" in warnings
    off = load_config(write_config(tmp_path, sms={"signature": "【云客服】"}))
    assert not any("missed_call" in text for text in [*check_report(off)[0],
                                                      *check_report(off)[1]])


def test_bad_answers_and_signatures_are_config_problems(tmp_path: Path) -> None:
    path = write_config(tmp_path, sms={"signature": "【" + "很长" * 12 + "】",
                                       "help_reply": {"en": "{{ url }}"},
                                       "opt_out_hint": 5})
    with pytest.raises(ConfigError) as raised:
        load_config(path, render_templates=True)
    problems = raised.value.problems
    assert "[sms] signature for '*' is 26 characters, at most 20 allowed" in problems
    assert "[sms] opt_out_hint must be a text or a table of language = \"text\"" in problems
    assert any(p.startswith("[sms] help_reply for 'en' does not render") for p in problems)
