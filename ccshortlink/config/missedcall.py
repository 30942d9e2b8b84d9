"""`[sms.missed_call_templates]`: the missed-call texts, and what they need to be sent."""

from __future__ import annotations

from jinja2 import TemplateError

from ccshortlink.config.reader import Reader
from ccshortlink.core.describe import describe
from ccshortlink.core.missedcall import SAMPLE_HOTLINE, MissedCallTexts
from ccshortlink.core.policy import PolicyConfig

DEFAULT_MISSED_CALL_TEMPLATES = {
    # One UCS-2 part, with a 12-character hotline; no link: no agent spoke with the caller.
    "zh-CN": "抱歉，刚才未能接听您的来电。请拨打{{ hotline }}再次联系我们。{{ opt_out_hint }}",
    "en": "Sorry we missed your call. Please call us again on {{ hotline }}. "
    "{{ opt_out_hint }}",
}


def read_missed_call_templates(sms: Reader) -> dict[str, str]:
    """The defaults, with the languages the table sets replaced (as `[sms.templates]`)."""
    templates = dict(DEFAULT_MISSED_CALL_TEMPLATES)
    raw = sms.raw("missed_call_templates", {})
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        sms.problems.append("[sms] missed_call_templates must be a table of language = \"text\"")
    else:
        templates.update(raw)
    return templates


def check_missed_call(policy: PolicyConfig, templates: dict[str, str], default_language: str,
                      hotline: str, *, render: bool) -> list[str]:
    """With `missed_call_sms` on: a hotline to give, and (when `render`) texts that give it."""
    if not policy.missed_call_sms:
        return []
    problems = []
    if not hotline.strip():
        problems.append("[policy] missed_call_sms needs [web] hotline: the SMS gives the "
                        "caller the number to call back")
    if default_language not in templates:
        problems.append(f"[sms] no missed_call_templates text for default_language "
                        f"{default_language!r}")
    if not render:
        return problems
    shown = hotline.strip() or SAMPLE_HOTLINE
    for language, text in templates.items():
        try:
            rendered = MissedCallTexts({language: text}, language).render_language(
                language, hotline=shown, company="")
        except (TemplateError, RecursionError, MemoryError) as exc:
            problems.append(f"[sms] missed_call_templates text for {language!r} fails: "
                            f"{describe(exc)}")
            continue
        except Exception as exc:  # anything a template raises is a config problem
            problems.append(f"[sms] missed_call_templates text for {language!r} fails to "
                            f"render: {describe(exc)}")
            continue
        if shown not in rendered:
            problems.append(f"[sms] missed_call_templates text for {language!r} renders "
                            f"without the hotline ({{{{ hotline }}}}): {rendered[:80]!r}")
    return problems
