"""check-config's advice on carrier-ready texts: signature, opt-out hint, answers' cost."""

from __future__ import annotations

from ccshortlink.config.sms import SmsConfig
from ccshortlink.config.smstexts import reply_texts
from ccshortlink.config.web import WebConfig
from ccshortlink.core.carriertext import for_language, sms_cost
from ccshortlink.core.links import (
    SAMPLE_CODE,
    SAMPLE_PUBLIC_URL,
    SmsTemplates,
    link_url,
    sample_agent,
)
from ccshortlink.core.missedcall import SAMPLE_HOTLINE, MissedCallTexts

SIGNATURE_OPEN, SIGNATURE_CLOSE = "【", "】"


def carrier_report(sms: SmsConfig, web: WebConfig, *, missed_call: bool = False
                   ) -> tuple[list[str], list[str]]:
    """Lines on what each answer to a reply (and, when `missed_call` is on, each missed-call
    SMS) costs, and warnings on every text."""
    lines, warnings = _reply_costs(sms, web)
    if missed_call:
        missed_lines, missed_warnings = _missed_call_costs(sms, web)
        lines, warnings = lines + missed_lines, warnings + missed_warnings
    return lines, _card_warnings(sms, web) + warnings


def _missed_call_costs(sms: SmsConfig, web: WebConfig) -> tuple[list[str], list[str]]:
    """The missed-call texts signed as sent: their cost, and whether they say how to opt out."""
    carrier = sms.carrier
    texts = MissedCallTexts(sms.missed_call_templates, sms.default_language,
                            signatures=carrier.signatures, opt_out_hints=carrier.opt_out_hints)
    lines, warnings = [], []
    for language in sorted(sms.missed_call_templates):
        try:
            text = texts.render_language(language, hotline=web.hotline.strip() or SAMPLE_HOTLINE,
                                         company=web.company)
        except Exception:  # check_missed_call names the problem
            continue
        cost = sms_cost(text)
        parts = "1 part" if cost.parts == 1 else f"{cost.parts} parts"
        lines.append(f"missed_call {language}: {parts}, {cost.encoding}, {len(text)} characters")
        if cost.parts > 1:
            warnings.append(f"[sms] the missed_call_templates text for {language} needs "
                            f"{cost.parts} SMS parts with the signature")
        hint = for_language(carrier.opt_out_hints, language)
        if hint and hint not in text:
            warnings.append(f"[sms] the missed_call_templates text for {language} does not say "
                            f"how to opt out ({hint!r}): put {{{{ opt_out_hint }}}} in it")
    return lines, warnings


def _card_warnings(sms: SmsConfig, web: WebConfig) -> list[str]:
    """Each card template with a typical agent and link, before and after it is signed."""
    carrier = sms.carrier
    url = link_url(web.public_url or SAMPLE_PUBLIC_URL, SAMPLE_CODE)
    warnings = []
    unsigned_chinese = []
    for language in sorted(sms.templates):
        try:
            bare = SmsTemplates({language: sms.templates[language]}, language,
                                opt_out_hints=carrier.opt_out_hints).render_language(
                language, sample_agent(language), url, SAMPLE_CODE)
        except Exception:  # check_templates names the problem
            continue
        signature = for_language(carrier.signatures, language).strip()
        if signature and signature in bare[1:]:
            warnings.append(f"[sms] the {language} template holds the signature {signature} "
                            "itself: it is added at the start of every SMS, remove it from the "
                            "template")
        if not signature and language.startswith("zh") and not (
                bare.startswith(SIGNATURE_OPEN) or bare.endswith(SIGNATURE_CLOSE)):
            unsigned_chinese.append(language)
        hint = for_language(carrier.opt_out_hints, language)
        if not hint:
            warnings.append(f"[sms] no opt-out hint for {language}: set [sms] opt_out_hint "
                            f"for it and put {{{{ opt_out_hint }}}} in its template")
        elif hint not in bare:
            warnings.append(f"[sms] the {language} template does not say how to opt out "
                            f"({hint!r}): put {{{{ opt_out_hint }}}} in it")
    if unsigned_chinese:
        warnings.append(f"[sms] no signature for {', '.join(unsigned_chinese)}: carriers in "
                        "mainland China require every SMS to start with the sender's "
                        "registered signature, e.g. signature = \"【云客服】\"")
    return warnings


def _reply_costs(sms: SmsConfig, web: WebConfig) -> tuple[list[str], list[str]]:
    texts = reply_texts(sms.carrier, sms.default_language, company=web.company,
                        hotline=web.hotline)
    lines, warnings = [], []
    for kind in sms.carrier.replies:
        for language in texts.languages(kind):
            try:
                text = texts.render(kind, language)
            except Exception:  # check_reply_texts names the problem
                continue
            cost = sms_cost(text)
            parts = "1 part" if cost.parts == 1 else f"{cost.parts} parts"
            lines.append(f"{kind.value} {language}: {parts}, {cost.encoding}, "
                         f"{len(text)} characters")
            if cost.parts > 1:
                warnings.append(f"[sms] the {kind.value} text for {language} needs "
                                f"{cost.parts} SMS parts with the signature")
    if not web.hotline:
        warnings.append("[web] hotline is not set: the answer to HELP cannot name a number "
                        "to call")
    return lines, warnings
