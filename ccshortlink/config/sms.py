"""The [sms] section: the texts, their languages, retries and the reply words."""

from __future__ import annotations

from dataclasses import dataclass, field

from ccshortlink.config.missedcall import DEFAULT_MISSED_CALL_TEMPLATES, read_missed_call_templates
from ccshortlink.config.reader import Reader
from ccshortlink.config.smstexts import CarrierTexts, read_carrier_texts
from ccshortlink.core.links import SmsTemplates


@dataclass(frozen=True)
class SmsConfig:
    templates: dict[str, str] = field(default_factory=dict)
    default_language: str = "zh-CN"
    max_attempts: int = 10
    expire_hours: float = 24.0
    opt_out_words: tuple[str, ...] = ("STOP", "TD", "T", "退订", "R", "UNSUBSCRIBE")
    opt_in_words: tuple[str, ...] = ("START", "订阅")
    missed_call_templates: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_MISSED_CALL_TEMPLATES))
    # The signature, the opt-out hint, the help words and the answers to replies.
    carrier: CarrierTexts = field(default_factory=CarrierTexts)


DEFAULT_TEMPLATES = {
    # One UCS-2 part (68 of 70 characters) with a 5-character signature such as 【云客服】, a
    # 3-character name, CS1001, a 9-character code on https://cs.example.com and 回TD退订
    # (69 with a 10-character code): a second part costs as much again for every call.
    "zh-CN": "{{ agent.name }}（工号{{ agent.id }}）为您服务，再次联系TA：{{ url }} "
    "{{ opt_out_hint }}",
    "en": "Thanks for calling. You spoke with {{ agent.name }} (ID {{ agent.id }}). "
    "Reach them again: {{ url }} {{ opt_out_hint }}",
}


def card_templates(sms: SmsConfig) -> SmsTemplates:
    """The card texts as the daemon sends them: signed, with the opt-out hints."""
    return SmsTemplates(sms.templates, sms.default_language,
                        signatures=sms.carrier.signatures,
                        opt_out_hints=sms.carrier.opt_out_hints)


def read_sms(sms: Reader) -> SmsConfig:
    default_language = sms.text("default_language", "zh-CN")
    templates = dict(DEFAULT_TEMPLATES)
    raw_templates = sms.raw("templates", {})
    if not isinstance(raw_templates, dict) or not all(
        isinstance(v, str) for v in raw_templates.values()
    ):
        sms.problems.append("[sms] templates must be a table of language = \"text\"")
    else:
        templates.update(raw_templates)
    if "template" in sms.table:  # a single template overrides the default language's one
        templates[default_language] = sms.text("template")
    sms_cfg = SmsConfig(
        templates=templates,
        default_language=default_language,
        max_attempts=sms.integer("max_attempts", 10, minimum=1, maximum=1000),
        expire_hours=sms.number("expire_hours", 24.0, minimum=0.01, maximum=720),
        opt_out_words=sms.words("opt_out_words", SmsConfig.opt_out_words),
        opt_in_words=sms.words("opt_in_words", SmsConfig.opt_in_words),
        missed_call_templates=read_missed_call_templates(sms),
        carrier=read_carrier_texts(sms, default_language),
    )
    if sms_cfg.default_language not in templates:
        sms.problems.append(
            f"[sms] no template for default_language {sms_cfg.default_language!r}")
    return sms_cfg
