"""The [sms] keys for carrier-ready texts: signature, opt-out hint, help words, the answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from ccshortlink.config.reader import Reader
from ccshortlink.core.carriertext import DEFAULT_OPT_OUT_HINTS
from ccshortlink.core.describe import describe
from ccshortlink.core.replytexts import DEFAULT_REPLY_TEXTS, ReplyTexts
from ccshortlink.core.vocab import SmsKind

MAX_SIGNATURE = 20  # characters; a registered signature is 2-12 characters between 【】


@dataclass(frozen=True)
class CarrierTexts:
    """What every SMS carries and how replies are answered."""

    signatures: dict[str, str] = field(default_factory=dict)  # language, or "*" for all
    opt_out_hints: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_OPT_OUT_HINTS))
    help_words: tuple[str, ...] = ("HELP", "帮助", "客服")
    replies: dict[SmsKind, dict[str, str]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_REPLY_TEXTS.items()})

    @property
    def signature(self) -> str:
        """The signature of the texts in any language without one of their own."""
        return self.signatures.get("*", "")


def by_language(sms: Reader, key: str, default_language: str, *, everyone: str | None = None,
                defaults: dict[str, str] | None = None, max_length: int | None = None
                ) -> dict[str, str]:
    """A key that is either one text or a table of language = text, over `defaults`.

    One text is for `everyone` (a key such as "*") when given, else for the default language.
    """
    table = dict(defaults or {})
    raw = sms.raw(key)
    if raw is None:
        return table
    if isinstance(raw, str):
        table[everyone or default_language] = raw
    elif isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
        table.update(raw)
    else:
        sms.problems.append(f"[sms] {key} must be a text or a table of language = \"text\"")
        return table
    for language, text in table.items():
        if max_length is not None and len(text.strip()) > max_length:
            sms.problems.append(f"[sms] {key} for {language!r} is {len(text.strip())} "
                                f"characters, at most {max_length} allowed")
    return table


def read_carrier_texts(sms: Reader, default_language: str) -> CarrierTexts:
    replies = {}
    for kind in (SmsKind.OPT_OUT_CONFIRMATION, SmsKind.OPT_IN_CONFIRMATION, SmsKind.HELP_REPLY):
        replies[kind] = by_language(sms, kind.value, default_language,
                                    defaults=DEFAULT_REPLY_TEXTS[kind])
    return CarrierTexts(
        signatures=by_language(sms, "signature", default_language, everyone="*",
                               max_length=MAX_SIGNATURE),
        opt_out_hints=by_language(sms, "opt_out_hint", default_language,
                                  defaults=DEFAULT_OPT_OUT_HINTS),
        help_words=sms.words("help_words", CarrierTexts.help_words),
        replies=replies)


def reply_texts(texts: CarrierTexts, default_language: str, *, company: str,
                hotline: str) -> ReplyTexts:
    """The compiled answers, as the daemon sends them."""
    return ReplyTexts(texts.replies, default_language, company=company, hotline=hotline,
                      signatures=texts.signatures, opt_out_hints=texts.opt_out_hints)


def check_reply_texts(texts: CarrierTexts, default_language: str) -> list[str]:
    """Problems an answer would only show when a customer replies: found at start instead."""
    problems = []
    for kind, by_language in texts.replies.items():
        for language, text in sorted(by_language.items()):
            try:
                ReplyTexts({kind: {language: text}}, default_language, company="Example",
                           hotline="4008000000").render(kind, language)
            except Exception as exc:  # anything a template raises is a config problem
                problems.append(f"[sms] {kind.value} for {language!r} does not render: "
                                f"{describe(exc)}")
    return problems
