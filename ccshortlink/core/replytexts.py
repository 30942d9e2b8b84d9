"""The automatic answers to replies (opt-out, opt-in, help): compiled once, signed, no link."""

from __future__ import annotations

from collections.abc import Mapping

from ccshortlink.core.carriertext import (
    DEFAULT_OPT_OUT_HINTS,
    closest_language,
    for_language,
    sign,
)
from ccshortlink.core.links import REGION_LANGUAGE
from ccshortlink.core.sandbox import BoundedEnvironment, render_bounded
from ccshortlink.core.vocab import SmsKind

# One UCS-2 part or one GSM-7 part each, with a 5-character signature, a company name of a
# few characters and an 11-digit hotline. The variables: company, hotline, opt_out_hint.
DEFAULT_REPLY_TEXTS: dict[SmsKind, dict[str, str]] = {
    SmsKind.OPT_OUT_CONFIRMATION: {
        "zh-CN": "您已退订{{ company }}短信，将不再收到我们的消息。回复订阅可恢复。",
        "en": "You have opted out of {{ company or 'our' }} messages. Reply START to opt back in.",
    },
    SmsKind.OPT_IN_CONFIRMATION: {
        "zh-CN": "您已恢复接收{{ company }}短信。{{ opt_out_hint }}",
        "en": "You will get {{ company or 'our' }} messages again. {{ opt_out_hint }}",
    },
    SmsKind.HELP_REPLY: {
        # Without a hotline, the card link of an earlier SMS is the way back: no false promise.
        "zh-CN": "{{ company }}客服{% if hotline %}热线：{{ hotline }}{% else %}：请点击此前短信中"
                 "的链接联系为您服务的客服{% endif %}。{{ opt_out_hint }}",
        "en": "{{ company or 'Customer service' }}: {% if hotline %}call {{ hotline }}"
              "{% else %}open the link in our earlier SMS to reach your agent{% endif %}. "
              "{{ opt_out_hint }}",
    },
}


class ReplyTexts:
    """One text per kind of answer and language; rendered with the company and hotline."""

    def __init__(self, texts: Mapping[SmsKind, Mapping[str, str]], default_language: str, *,
                 company: str = "", hotline: str = "",
                 signatures: Mapping[str, str] | None = None,
                 opt_out_hints: Mapping[str, str] | None = None) -> None:
        env = BoundedEnvironment()  # config-file templates: sandboxed and bounded, as the cards
        self._compiled = {kind: {lang: env.from_string(text) for lang, text in by_lang.items()}
                          for kind, by_lang in texts.items()}
        self.default_language = default_language
        self.company = company
        self.hotline = hotline
        self.signatures = dict(signatures or {})
        self.opt_out_hints = dict(DEFAULT_OPT_OUT_HINTS if opt_out_hints is None
                                  else opt_out_hints)

    def languages(self, kind: SmsKind) -> list[str]:
        return sorted(self._compiled.get(kind, {}))

    def language_for(self, kind: SmsKind, customer_region: str) -> str:
        """The customer's country's language when there is a text in it, else the default."""
        texts = self._compiled.get(kind, {})
        fallback = (self.default_language if self.default_language in texts
                    else min(texts, default=""))
        return closest_language(REGION_LANGUAGE.get(customer_region, ""), texts, fallback)

    def render(self, kind: SmsKind, language: str) -> str:
        """The answer exactly as it is sent, the signature first; '' when there is no text."""
        template = self._compiled.get(kind, {}).get(language)
        if template is None:
            return ""
        text = render_bounded(template, company=self.company, hotline=self.hotline,
                              opt_out_hint=for_language(self.opt_out_hints, language))
        return sign(" ".join(text.split()), for_language(self.signatures, language))
