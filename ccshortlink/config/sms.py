"""The [sms] section: the texts, their languages, retries and the reply words."""

from __future__ import annotations

from dataclasses import dataclass, field

from ccshortlink.config.missedcall import DEFAULT_MISSED_CALL_TEMPLATES, read_missed_call_templates
from ccshortlink.config.reader import Reader


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


DEFAULT_TEMPLATES = {
    # One UCS-2 part (67 of 70 characters) with a 3-character name, CS1001 and a 9-character
    # code on https://cs.example.com: a second part costs as much again for every call.
    "zh-CN": "刚才为您服务的是{{ agent.name }}（工号{{ agent.id }}），"
    "再次联系TA：{{ url }} 回TD退订",
    "en": "Thanks for calling. You spoke with {{ agent.name }} (ID {{ agent.id }}). "
    "Reach them again: {{ url }} Reply STOP to opt out",
}


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
    )
    if sms_cfg.default_language not in templates:
        sms.problems.append(
            f"[sms] no template for default_language {sms_cfg.default_language!r}")
    return sms_cfg
