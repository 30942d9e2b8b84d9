"""A queue call no agent answered, as a request for the missed-call SMS."""

from __future__ import annotations

import secrets

from ccshortlink.config.settings import Config
from ccshortlink.core.callrules import queue_rule_skip
from ccshortlink.core.calls import CallClosed
from ccshortlink.core.missedcall import MissedCallTexts, decide_missed_call, missed_call_reason
from ccshortlink.core.policy import CustomerNumber, day_start
from ccshortlink.core.records import CardRequest, DecisionRecord, SmsDraft
from ccshortlink.core.sms import encode_sms
from ccshortlink.core.vocab import Trigger


def wants_missed_call_sms(closed: CallClosed, config: Config) -> bool:
    """An unanswered call that waited in a queue (abandoned there, or let go by it) that the
    queue lists let through: a queue excluded from cards is excluded from this SMS too."""
    return (config.policy.missed_call_sms and closed.trigger == Trigger.NOT_ANSWERED
            and closed.route is not None and bool(closed.route.queues)
            and queue_rule_skip(closed.route.queue, config.policy) is None)


def missed_call_request(closed: CallClosed, customer: CustomerNumber, *, config: Config,
                        texts: MissedCallTexts, now: float) -> CardRequest:
    """Judged inside the batch's transaction on the number's facts, like a card."""
    assert closed.route is not None
    policy = config.policy

    def draft(_code: str, not_before: float) -> SmsDraft:
        text = texts.render(customer.region, hotline=config.web.hotline,
                            company=config.web.company)
        encoded = encode_sms(text, secrets.randbelow(0x10000))
        return SmsDraft(text=text, data_coding=encoded.data_coding,
                        esm_class=encoded.esm_class, parts=encoded.parts, not_before=not_before,
                        expires_at=not_before + config.sms.expire_hours * 3600)

    return CardRequest(
        record=DecisionRecord(
            linkedid=closed.linkedid, trigger=closed.trigger, agent_id="", agent_extension="",
            customer_number=customer.e164, talk_seconds=None, outcome=None,
            reason=missed_call_reason(closed.route), pbx=closed.pbx),
        customer_region=customer.region,
        pair_since=now - policy.resend_window_hours * 3600,
        day_start=day_start(now, customer.time_zone),
        judge=lambda facts: decide_missed_call(facts=facts, customer=customer, policy=policy,
                                               now=now),
        draft=draft, missed_call=True)
