"""Customers' replies as they type them: normalised, then matched whole against the words."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from ccshortlink.core.vocab import ReplyKind, SmsKind

# Auto-responders must not loop: a number gets at most one automatic answer in this many s.
AUTO_REPLY_INTERVAL = 3600.0

ANSWERS = {ReplyKind.OPT_OUT: SmsKind.OPT_OUT_CONFIRMATION,
           ReplyKind.OPT_IN: SmsKind.OPT_IN_CONFIRMATION,
           ReplyKind.HELP: SmsKind.HELP_REPLY}
AUTO_REPLY_KINDS = frozenset(ANSWERS.values())

# Unicode general categories dropped: punctuation (P*), separators (Z*: spaces, also the
# ideographic one), controls and format characters (C*), symbols (S*: emoji, ～, ＄...).
_DROPPED = frozenset("PZCS")


def normalise_reply(text: str) -> str:
    """` Td。`, `td!` and `ＴＤ` all become `td`: NFKC (full-width to ASCII), case-folded,
    without whitespace, punctuation or symbols anywhere in it."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in _DROPPED)


def classify_reply(text: str, *, opt_out_words: Iterable[str], opt_in_words: Iterable[str],
                   help_words: Iterable[str]) -> ReplyKind:
    """What the reply asks for. Only the whole reply matches a word: a sentence that merely
    contains `stop` or `退订` is not an opt-out. A word in two lists opts out (the safe side)."""
    word = normalise_reply(text)
    if not word:
        return ReplyKind.OTHER
    for kind, words in ((ReplyKind.OPT_OUT, opt_out_words), (ReplyKind.OPT_IN, opt_in_words),
                        (ReplyKind.HELP, help_words)):
        if word in {normalise_reply(w) for w in words}:
            return kind
    return ReplyKind.OTHER


def may_answer(last_auto_reply_at: float | None, now: float) -> bool:
    """At most one automatic answer per number per AUTO_REPLY_INTERVAL."""
    return last_auto_reply_at is None or now - last_auto_reply_at >= AUTO_REPLY_INTERVAL
