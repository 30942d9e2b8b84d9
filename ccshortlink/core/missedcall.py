"""The missed-call SMS: its text per language, and whether a caller gets it now; pure, no I/O.

A caller whose queue call no agent answered (they gave up waiting, or the queue let them go)
gets one "sorry we missed you" SMS with the hotline and no agent link, when `[policy]
missed_call_sms` is on; the opt-outs, the daily cap and quiet hours hold it as they hold a card.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ccshortlink.core.callroute import CallRoute
from ccshortlink.core.carriertext import (
    DEFAULT_OPT_OUT_HINTS,
    closest_language,
    for_language,
    sign,
)
from ccshortlink.core.links import REGION_LANGUAGE  # one table: cards and this text agree
from ccshortlink.core.policy import CustomerNumber, Decision, PolicyConfig, SendFacts, decide
from ccshortlink.core.sandbox import BoundedEnvironment, render_bounded
from ccshortlink.core.vocab import Trigger, Verdict

SAMPLE_HOTLINE = "400-820-8820"


def missed_call_reason(route: CallRoute) -> str:
    """What the decision records about the call, e.g. "missed call in queue support (abandoned)"."""
    how = "abandoned" if route.abandoned else "not answered"
    return f"missed call in queue {route.queue} ({how})"


class MissedCallTexts:
    """The configured missed-call texts, compiled once; one per language."""

    def __init__(self, templates: dict[str, str], default_language: str, *,
                 signatures: Mapping[str, str] | None = None,
                 opt_out_hints: Mapping[str, str] | None = None) -> None:
        env = BoundedEnvironment()  # from a config file: sandboxed and bounded, as the cards'
        self._compiled = {lang: env.from_string(text) for lang, text in templates.items()}
        self.default_language = default_language
        # Signed and hinted like every other SMS the daemon sends ([sms] signature).
        self.signatures = dict(signatures or {})
        self.opt_out_hints = dict(DEFAULT_OPT_OUT_HINTS if opt_out_hints is None
                                  else opt_out_hints)

    def language_for(self, customer_region: str) -> str:
        """No agent to take a language from: the customer's country's, else the default."""
        return closest_language(REGION_LANGUAGE.get(customer_region, ""), self._compiled,
                                self.default_language)

    def render(self, customer_region: str, *, hotline: str, company: str) -> str:
        return self.render_language(self.language_for(customer_region), hotline=hotline,
                                    company=company)

    def render_language(self, language: str, *, hotline: str, company: str) -> str:
        text = render_bounded(self._compiled[language], hotline=hotline, company=company,
                              opt_out_hint=for_language(self.opt_out_hints, language))
        return sign(" ".join(text.split()), for_language(self.signatures, language))


def decide_missed_call(*, facts: SendFacts, customer: CustomerNumber, policy: PolicyConfig,
                       now: float) -> Decision:
    """The card's rules (opt-out, daily cap, quiet hours), and one such SMS per resend window.

    `facts.last_pair_sms_at` is, here, when the last missed-call SMS went to this number.
    """
    decision = decide(trigger=Trigger.NOT_ANSWERED, talk_seconds=None, card_already_sent=False,
                      facts=replace(facts, last_pair_sms_at=None), customer=customer,
                      policy=policy, now=now)
    if decision.outcome == Verdict.SKIP:
        return decision
    last = facts.last_pair_sms_at
    if last is not None and now - last < policy.resend_window_hours * 3600:
        return Decision(Verdict.SKIP, f"a missed-call SMS went to this number within "
                                      f"{policy.resend_window_hours:g}h", now)
    return decision
