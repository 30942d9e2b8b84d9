"""Turn a finished call or a send request into a decision, a link and a queued SMS."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

from ccshortlink.app.missedcalls import missed_call_request, wants_missed_call_sms
from ccshortlink.app.ports import DecisionStore, Log
from ccshortlink.config.settings import Config
from ccshortlink.core.agents import Agent, AgentDirectory
from ccshortlink.core.callrules import hangup_rule_skip
from ccshortlink.core.calls import CallClosed, CallEnded, Outcome, SendRequested
from ccshortlink.core.links import SmsTemplates, link_url, new_code
from ccshortlink.core.missedcall import MissedCallTexts
from ccshortlink.core.policy import NumberRejected, day_start, decide, normalise_number
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.records import CardRequest, CardResult, DecisionRecord, SmsDraft
from ccshortlink.core.sms import encode_sms
from ccshortlink.core.vocab import DecisionOutcome, SendStatus, Trigger


@dataclass(frozen=True)
class CardOutcome:
    """What happened to one request: for logs, the HTTP API and the CLI."""

    status: SendStatus  # queued | deferred | skipped (refused only in send_for's answer)
    reason: str = ""
    code: str = ""
    sms_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None)}


class CardService:
    """Applies policy and records every decision; the only path that queues an SMS."""

    def __init__(self, *, store: DecisionStore, config: Config,
                 agents: Callable[[], AgentDirectory],
                 templates: Callable[[], SmsTemplates], clock: Callable[[], float],
                 log: Log, on_queued: Callable[[int], None] = lambda count: None,
                 code_factory: Callable[[], str] = new_code) -> None:
        self.store = store
        self.config = config
        self.agents = agents
        self.templates = templates
        self.clock = clock
        self.log = log
        self.on_queued = on_queued
        self.code_factory = code_factory

    async def handle(self, outcome: Outcome) -> CardOutcome:
        return _only(await self.handle_many([outcome]))

    async def handle_many(self, outcomes: Sequence[Outcome]
                          ) -> list[CardOutcome | Exception]:
        """Decide a batch of finished calls in one transaction, in the order they came."""
        now = self.clock()  # one instant for the batch: the facts and the rows agree on it
        return await self._decide([self._request(outcome, now) for outcome in outcomes], now)

    async def send(self, agent: Agent, raw_number: str, *, trigger: Trigger) -> CardOutcome:
        """The CRM/CLI path: one agent and number, through the same policy."""
        now = self.clock()
        return _only(await self._decide([self._card_request(
            agent, raw_number, now, trigger=trigger, linkedid="", agent_extension="",
            talk_seconds=None, card_already_sent=False)], now))

    async def send_for(self, agent_id: str, raw_number: str, *,
                       trigger: Trigger) -> dict[str, object]:
        """The API's answer: a CS ID and a number through the same policy; a request the
        policy skips, or an unknown agent, is `refused` (nothing is sent)."""
        agent = self.agents().by_id(agent_id)
        if agent is None:
            return {"status": SendStatus.REFUSED, "reason": f"unknown agent {agent_id!r}"}
        outcome = await self.send(agent, raw_number, trigger=trigger)
        result = outcome.as_dict()
        if outcome.status == SendStatus.SKIPPED:
            result["status"] = SendStatus.REFUSED
        return result

    def _request(self, outcome: Outcome, now: float) -> CardRequest | Exception:
        try:
            return self._call_request(outcome, now)
        except Exception as exc:  # this call's error alone: the rest of the batch goes on
            return exc

    def _call_request(self, outcome: Outcome, now: float) -> CardRequest:
        if isinstance(outcome, CallClosed):
            return self._closed_request(outcome, now)
        directory = self.agents()
        pbx = outcome.pbx  # an extension means the agent it means on the call's own PBX
        agent = directory.by_extension(outcome.agent_extension, pbx)
        talk = outcome.talk_seconds if isinstance(outcome, CallEnded) else None
        already = outcome.card_already_sent if isinstance(outcome, CallEnded) else False
        if agent is None:
            return _skip(outcome.trigger, outcome.linkedid, "", outcome.agent_extension,
                         outcome.customer_number, talk,
                         f"extension {outcome.agent_extension} is not an agent", pbx)
        if isinstance(outcome, SendRequested) and outcome.reason:
            return _skip(outcome.trigger, outcome.linkedid, agent.id, outcome.agent_extension,
                         "", None, outcome.reason, pbx)
        if isinstance(outcome, CallEnded):  # a card by itself at hangup: the rules may hold it
            rule = hangup_rule_skip(
                agent=agent, route=outcome.route, other_party=outcome.customer_number,
                policy=self.config.policy,
                is_agent_extension=lambda ext: directory.by_extension(ext, pbx) is not None)
            if rule is not None:
                return _skip(outcome.trigger, outcome.linkedid, agent.id,
                             outcome.agent_extension, outcome.customer_number, talk, rule, pbx)
        return self._card_request(agent, outcome.customer_number, now, trigger=outcome.trigger,
                                  linkedid=outcome.linkedid,
                                  agent_extension=outcome.agent_extension, talk_seconds=talk,
                                  card_already_sent=already, pbx=pbx)

    def _closed_request(self, closed: CallClosed, now: float) -> CardRequest:
        """A call closed without a decision (the PBX restarted, no Cdr...): kept for `trace`."""
        agent = self.agents().by_extension(closed.agent_extension, closed.pbx) \
            if closed.agent_extension else None
        customer = normalise_number(closed.customer_number, self.config.policy)
        if wants_missed_call_sms(closed, self.config) \
                and not isinstance(customer, NumberRejected):
            return missed_call_request(closed, customer, config=self.config,
                                       texts=self.missed_call_texts, now=now)
        number = closed.customer_number if isinstance(customer, NumberRejected) else customer.e164
        return _skip(closed.trigger, closed.linkedid, agent.id if agent else "",
                     closed.agent_extension, number, closed.talk_seconds, closed.reason,
                     closed.pbx)

    def _card_request(self, agent: Agent, raw_number: str, now: float, *, trigger: Trigger,
                      linkedid: str,
                      agent_extension: str, talk_seconds: float | None,
                      card_already_sent: bool, pbx: str = "") -> CardRequest:
        policy = self.config.policy
        customer = normalise_number(raw_number, policy)
        if isinstance(customer, NumberRejected):
            return _skip(trigger, linkedid, agent.id, agent_extension, raw_number, talk_seconds,
                         customer.reason, pbx)
        templates = self.templates()  # the set in force now, even if a reload lands meanwhile
        return CardRequest(
            record=DecisionRecord(
                linkedid=linkedid, trigger=trigger, agent_id=agent.id,
                agent_extension=agent_extension, customer_number=customer.e164,
                talk_seconds=talk_seconds, outcome=None, reason="", pbx=pbx),
            customer_region=customer.region,
            pair_since=now - policy.resend_window_hours * 3600,
            day_start=day_start(now, customer.time_zone), ttl=policy.link_ttl_days * 86400,
            judge=lambda facts: decide(
                trigger=trigger, talk_seconds=talk_seconds, card_already_sent=card_already_sent,
                facts=facts, customer=customer, policy=policy, now=now),
            draft=partial(self._draft, templates, agent, customer.region))

    @cached_property
    def missed_call_texts(self) -> MissedCallTexts:
        sms = self.config.sms
        return MissedCallTexts(sms.missed_call_templates, sms.default_language,
                               signatures=sms.carrier.signatures,
                               opt_out_hints=sms.carrier.opt_out_hints)

    async def _decide(self, requests: list[CardRequest | Exception],
                      now: float) -> list[CardOutcome | Exception]:
        """Requests that could not even be built keep their error in their place."""
        valid = [r for r in requests if isinstance(r, CardRequest)]
        decided = iter(await self.store.decide_cards(valid, now, self.code_factory))
        outcomes = [self._report(next(decided)) if isinstance(r, CardRequest) else r
                    for r in requests]
        queued = sum(isinstance(o, CardOutcome) and o.sms_id is not None for o in outcomes)
        if queued:
            self.on_queued(queued)
        return outcomes

    def _report(self, result: CardResult | Exception) -> CardOutcome | Exception:
        """Log one decision and say what happened to it."""
        if isinstance(result, Exception):
            return result
        record, issued = result.record, result.issued
        customer = mask_number(record.customer_number) if record.customer_number else None
        # With several PBXs a linkedid alone does not say which call: the PBX goes with it.
        where = {"pbx": record.pbx} if record.pbx and len(self.config.pbxs) > 1 else {}
        if issued is None and result.sms_id is not None:
            deferred = record.outcome == DecisionOutcome.DEFERRED
            self.log.info("missed_call_sms_queued", linkedid=record.linkedid, **where,
                          customer=customer, sms_id=result.sms_id, deferred=deferred,
                          reason=record.reason)
            return CardOutcome(status=SendStatus.DEFERRED if deferred else SendStatus.QUEUED,
                               reason=record.reason, sms_id=result.sms_id)
        if issued is None:
            self.log.info("card_skipped", linkedid=record.linkedid, **where,
                          trigger=record.trigger,
                          agent=record.agent_id or None,
                          extension=record.agent_extension or None, customer=customer,
                          reason=record.reason)
            return CardOutcome(status=SendStatus.SKIPPED, reason=record.reason)
        deferred = record.outcome == DecisionOutcome.DEFERRED
        self.log.info("card_queued", linkedid=record.linkedid, **where, trigger=record.trigger,
                      agent=record.agent_id, customer=customer, code=issued.code,
                      sms_id=issued.sms_id, reused_link=issued.reused, deferred=deferred,
                      reason=record.reason or None)
        status = SendStatus.DEFERRED if deferred else SendStatus.QUEUED
        return CardOutcome(status=status, reason=record.reason, code=issued.code,
                           sms_id=issued.sms_id)

    def _draft(self, templates: SmsTemplates, agent: Agent, region: str, code: str,
               not_before: float) -> SmsDraft:
        text = templates.render(agent, link_url(self.config.web.public_url, code), code, region)
        encoded = encode_sms(text, secrets.randbelow(0x10000))
        return SmsDraft(text=text, data_coding=encoded.data_coding, esm_class=encoded.esm_class,
                        parts=encoded.parts, not_before=not_before,
                        expires_at=not_before + self.config.sms.expire_hours * 3600)


def _only(results: list[CardOutcome | Exception]) -> CardOutcome:
    """The outcome of a batch of one, or its error raised."""
    [result] = results
    if isinstance(result, Exception):
        raise result
    return result


def _skip(trigger: Trigger, linkedid: str, agent_id: str, extension: str, number: str,
          talk_seconds: float | None, reason: str, pbx: str = "") -> CardRequest:
    """A decision known before any facts: recorded as skipped, nothing sent."""
    return CardRequest(record=DecisionRecord(
        linkedid=linkedid, trigger=trigger, agent_id=agent_id, agent_extension=extension,
        customer_number=number, talk_seconds=talk_seconds, outcome=DecisionOutcome.SKIPPED,
        reason=reason, pbx=pbx))
