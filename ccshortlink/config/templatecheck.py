"""What each SMS template costs: parts and encoding of its text with a typical agent and link."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ccshortlink.core.links import (
    SAMPLE_CODE,
    SAMPLE_PUBLIC_URL,
    SmsTemplates,
    link_url,
    sample_agent,
)
from ccshortlink.core.sms import DATA_CODING_UCS2, encode_sms


@dataclass(frozen=True)
class TemplateCost:
    language: str
    characters: int
    parts: int
    encoding: str  # "GSM 7-bit" or "UCS-2"


def template_costs(templates: dict[str, str], public_url: str = "", *,
                   signatures: Mapping[str, str] | None = None,
                   opt_out_hints: Mapping[str, str] | None = None) -> list[TemplateCost]:
    """One entry per template that renders, signed as it is sent; check_templates reports
    the ones that do not."""
    url = link_url(public_url or SAMPLE_PUBLIC_URL, SAMPLE_CODE)
    costs = []
    for language in sorted(templates):
        try:
            one = SmsTemplates({language: templates[language]}, language,
                               signatures=signatures, opt_out_hints=opt_out_hints)
            text = one.render_language(language, sample_agent(language), url, SAMPLE_CODE)
            sms = encode_sms(text, 0)
        except Exception:  # check_templates names the problem
            continue
        encoding = "UCS-2" if sms.data_coding == DATA_CODING_UCS2 else "GSM 7-bit"
        costs.append(TemplateCost(language, len(text), len(sms.parts), encoding))
    return costs


def describe(costs: list[TemplateCost], default_language: str) -> tuple[list[str], list[str]]:
    """Lines for check-config, and warnings: a text of more than one part."""
    lines, warnings = [], []
    for cost in costs:
        parts = "1 part" if cost.parts == 1 else f"{cost.parts} parts"
        lines.append(f"template {cost.language}: {parts}, {cost.encoding}, "
                     f"{cost.characters} characters with a typical agent and link")
        if cost.parts > 1:
            which = " (default language)" if cost.language == default_language else ""
            warnings.append(f"[sms] the {cost.language} template{which} needs "
                            f"{cost.parts} SMS parts: each call is billed {cost.parts} times")
    return lines, warnings
