"""Turn a finished call or a send request into a decision, a link and a queued SMS."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ccshortlink.agents import Agent, AgentDirectory
from ccshortlink.calls import CallEnded, SendRequested
from ccshortlink.config import Config
from ccshortlink.links import SmsTemplates, link_url, new_code
from ccshortlink.logs import Logger, mask_number
from ccshortlink.policy import NumberRejected, day_start, decide, normalise_number
from ccshortlink.sms import encode_sms
from ccshortlink.store import DecisionRecord, SmsDraft, Store


@dataclass(frozen=True)
class CardOutcome:
    """What happened to one request: for logs, the HTTP API and the CLI."""

    status: str  # queued | deferred | skipped
    reason: str = ""
    code: str = ""
    sms_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None)}


class CardService:
    """Applies policy and records every decision; the only path that queues an SMS."""

    def __init__(self, *, store: Store, config: Config, agents: Callable[[], AgentDirectory],
                 templates: Callable[[], SmsTemplates], clock: Callable[[], float],
                 log: Logger, on_queued: Callable[[], None] = lambda: None,
                 code_factory: Callable[[], str] = new_code) -> None:
        self.store = store
        self.config = config
        self.agents = agents
        self.templates = templates
        self.clock = clock
        self.log = log
        self.on_queued = on_queued
        self.code_factory = code_factory

    async def handle(self, outcome: CallEnded | SendRequested) -> CardOutcome:
        agent = self.agents().by_extension(outcome.agent_extension)
        talk = outcome.talk_seconds if isinstance(outcome, CallEnded) else None
        already = outcome.card_already_sent if isinstance(outcome, CallEnded) else False
        if agent is None:
            return await self._skip(outcome.trigger, outcome.linkedid, "", outcome.agent_extension,
                                    outcome.customer_number, talk,
                                    f"extension {outcome.agent_extension} is not an agent")
        if isinstance(outcome, SendRequested) and outcome.reason:
            return await self._skip(outcome.trigger, outcome.linkedid, agent.id,
                                    outcome.agent_extension, "", None, outcome.reason)
        return await self.send(agent, outcome.customer_number, trigger=outcome.trigger,
                               linkedid=outcome.linkedid, agent_extension=outcome.agent_extension,
                               talk_seconds=talk, card_already_sent=already)

    async def send(self, agent: Agent, raw_number: str, *, trigger: str, linkedid: str = "",
                   agent_extension: str = "", talk_seconds: float | None = None,
                   card_already_sent: bool = False) -> CardOutcome:
        policy = self.config.policy
        customer = normalise_number(raw_number, policy)
        if isinstance(customer, NumberRejected):
            return await self._skip(trigger, linkedid, agent.id, agent_extension, raw_number,
                                    talk_seconds, customer.reason)
        now = self.clock()
        facts = await self.store.send_facts(
            agent.id, customer.e164, pair_since=now - policy.resend_window_hours * 3600,
            day_start=day_start(now, customer.time_zone))
        decision = decide(trigger=trigger, talk_seconds=talk_seconds,
                          card_already_sent=card_already_sent, facts=facts, customer=customer,
                          policy=policy, now=now)
        if decision.outcome == "skip":
            return await self._skip(trigger, linkedid, agent.id, agent_extension, customer.e164,
                                    talk_seconds, decision.reason)
        record = DecisionRecord(
            linkedid=linkedid, trigger=trigger, agent_id=agent.id,
            agent_extension=agent_extension, customer_number=customer.e164,
            talk_seconds=talk_seconds, outcome="sent" if decision.outcome == "send" else "deferred",
            reason=decision.reason)
        issued = await self.store.issue_link(
            agent_id=agent.id, customer_number=customer.e164, linkedid=linkedid, now=now,
            ttl=policy.link_ttl_days * 86400, new_code=self.code_factory,
            customer_region=customer.region, decision=record,
            sms=lambda code: self._draft(agent, customer.region, code, decision.not_before))
        self.log.info("card_queued", linkedid=linkedid, trigger=trigger, agent=agent.id,
                      customer=mask_number(customer.e164), code=issued.code, sms_id=issued.sms_id,
                      reused_link=issued.reused, deferred=decision.outcome == "defer",
                      reason=decision.reason or None)
        self.on_queued()
        return CardOutcome(status="queued" if decision.outcome == "send" else "deferred",
                           reason=decision.reason, code=issued.code, sms_id=issued.sms_id)

    def _draft(self, agent: Agent, region: str, code: str, not_before: float) -> SmsDraft:
        text = self.templates().render(agent, link_url(self.config.web.public_url, code), code,
                                       region)
        encoded = encode_sms(text, secrets.randbelow(0x10000))
        return SmsDraft(text=text, data_coding=encoded.data_coding, esm_class=encoded.esm_class,
                        parts=encoded.parts, not_before=not_before,
                        expires_at=not_before + self.config.sms.expire_hours * 3600)

    async def _skip(self, trigger: str, linkedid: str, agent_id: str, extension: str,
                    number: str, talk_seconds: float | None, reason: str) -> CardOutcome:
        now = self.clock()
        await self.store.record_decision(DecisionRecord(
            linkedid=linkedid, trigger=trigger, agent_id=agent_id, agent_extension=extension,
            customer_number=number, talk_seconds=talk_seconds, outcome="skipped",
            reason=reason), now)
        self.log.info("card_skipped", linkedid=linkedid, trigger=trigger, agent=agent_id or None,
                      extension=extension or None, customer=mask_number(number) if number else None,
                      reason=reason)
        return CardOutcome(status="skipped", reason=reason)
