"""SQL for links, decisions and the do-not-send list."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ccshortlink.core.policy import Decision, SendFacts
from ccshortlink.core.records import (
    CardRequest,
    CardResult,
    DecisionRecord,
    IssuedLink,
    SmsDraft,
)
from ccshortlink.core.vocab import DecisionOutcome, SmsKind, Verdict
from ccshortlink.store.base import StoreBase
from ccshortlink.store.errors import StoreError
from ccshortlink.store.notices import decide_missed_call
from ccshortlink.store.rows import (
    DECIDED_ELSEWHERE,
    cancel_unsent_to_opted_out,
    claim_call,
    insert_decision,
    lock_customer,
    lock_customers,
    queue_sms,
)
from ccshortlink.store.transactions import each_in_savepoint


class LinkStore(StoreBase):
    """Minting and reusing links, recording every decision, opt-outs."""

    # --- links and decisions -------------------------------------------------------------

    async def send_facts(self, agent_id: str, customer_number: str, *, pair_since: float,
                         day_start: float) -> SendFacts:
        return await self._read(lambda db: _send_facts(db, agent_id, customer_number,
                                                       pair_since, day_start))

    async def issue_link(self, *, agent_id: str, customer_number: str, linkedid: str, now: float,
                         ttl: float, new_code: Callable[[], str],
                         sms: Callable[[str], SmsDraft] | None = None,
                         customer_region: str = "",
                         decision: DecisionRecord | None = None) -> IssuedLink:
        """Reuse the pair's live link (extending it) or mint one; queue the SMS; one transaction.

        `sms` builds the SMS for the code finally used (a reused link keeps its code); it runs
        on the database thread, so it must be pure (render and encode only).
        """
        return await self._write(lambda db: _issue_link(
            db, agent_id=agent_id, customer_number=customer_number, linkedid=linkedid, now=now,
            ttl=ttl, new_code=new_code, sms=sms, customer_region=customer_region,
            decision=decision))

    async def decide_cards(self, requests: Sequence[CardRequest], now: float,
                           new_code: Callable[[], str]) -> list[CardResult | Exception]:
        """Every request of a batch in one transaction, in order, each in its own savepoint.

        In order, so a customer's second call sees the first one's SMS (resend window, daily
        cap); one savepoint each, so a request that fails (a template error, say) is rolled
        back and reported alone while the others are kept.
        """
        return await self._write(lambda db: decide_batch(db, requests, now, new_code))

    async def revoke_link(self, code: str, now: float) -> bool:
        return await self._write(lambda db: db.execute(
            "UPDATE links SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL",
            (now, code)).rowcount > 0)

    # --- opt-outs ------------------------------------------------------------------------

    async def set_opt_out(self, customer_number: str, opted_out: bool, source: str,
                          now: float) -> bool:
        """Returns True when the list changed."""
        def work(db: sqlite3.Connection) -> bool:
            # As a decision does: a card being decided for this number on another connection
            # commits first, so the cancelling below sees its SMS.
            lock_customer(db, customer_number)
            if opted_out:
                cursor = db.execute(
                    "INSERT INTO opt_outs (customer_number, source, at) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (customer_number, source, now))
                cancel_unsent_to_opted_out(db, customer_number, source, now)
            else:
                cursor = db.execute("DELETE FROM opt_outs WHERE customer_number = ?",
                                    (customer_number,))
            return cursor.rowcount > 0

        return await self._write(work)

    async def opt_outs(self) -> list[tuple[str, str, float]]:
        rows = await self._all("SELECT customer_number, source, at FROM opt_outs ORDER BY at")
        return [(r[0], r[1], r[2]) for r in rows]


# Answers to the customer's own replies (a STOP confirmation) are not cards: not capped.
_FACTS = (
    "(SELECT 1 FROM opt_outs WHERE customer_number = ?),"
    " (SELECT MAX(s.created_at) FROM sms s JOIN links l ON l.id = s.link_id"
    " WHERE l.agent_id = ? AND l.customer_number = ? AND s.created_at >= ?"
    " AND s.status NOT IN ('failed', 'expired')),"
    " (SELECT COUNT(*) FROM sms WHERE destination = ? AND created_at >= ?"
    " AND status NOT IN ('failed', 'expired')"
    " AND kind NOT IN ('opt_out_confirmation', 'opt_in_confirmation', 'help_reply'))")
# The pair's live link, the newest: the one a new card reuses.
_PAIR_LINK = ("FROM links WHERE agent_id = ? AND customer_number = ? AND expires_at > ?"
              " AND revoked_at IS NULL ORDER BY id DESC LIMIT 1")


@dataclass(frozen=True)
class PairLink:
    """The pair's live link (id, code) as a decision's facts found it; None: it has none."""

    row: tuple[int, str] | None


def _send_facts(db: sqlite3.Connection, agent_id: str, customer_number: str, pair_since: float,
                day_start: float) -> SendFacts:
    sql, params = facts_query(agent_id, customer_number, pair_since, day_start)
    return read_facts(db.execute(sql, params).fetchone())[0]


def facts_query(agent_id: str, customer_number: str, pair_since: float, day_start: float,
                live_at: float | None = None) -> tuple[str, tuple[object, ...]]:
    """The policy's facts, and with `live_at` the pair's live link then, in one statement:
    on PostgreSQL each statement the decision waits for is a round trip."""
    sql = f"SELECT {_FACTS}"
    params: tuple[object, ...] = (customer_number, agent_id, customer_number, pair_since,
                                  customer_number, day_start)
    if live_at is not None:
        sql += f", (SELECT id {_PAIR_LINK}), (SELECT code {_PAIR_LINK})"
        params += (agent_id, customer_number, live_at) * 2
    return sql, params


def read_facts(row: Sequence[Any]) -> tuple[SendFacts, PairLink | None]:
    """facts_query's answer (its columns may follow others': pass the row from there)."""
    facts = SendFacts(opted_out=row[0] is not None, last_pair_sms_at=row[1],
                      sms_since_day_start=int(row[2]))
    if len(row) < 5:
        return facts, None
    return facts, PairLink(None if row[3] is None else (int(row[3]), str(row[4])))


def decided_elsewhere(record: DecisionRecord) -> CardResult:
    """Several daemons: another one took this call's key first."""
    return CardResult(record=replace(record, outcome=DecisionOutcome.SKIPPED,
                                     reason=DECIDED_ELSEWHERE), issued=None)


def judged(request: CardRequest, facts: SendFacts) -> tuple[DecisionRecord, Decision]:
    """The request's record with the policy's verdict on the facts, and the verdict."""
    assert request.judge is not None
    decision = request.judge(facts)
    outcome = {Verdict.SKIP: DecisionOutcome.SKIPPED, Verdict.SEND: DecisionOutcome.SENT}.get(
        decision.outcome, DecisionOutcome.DEFERRED)
    return replace(request.record, outcome=outcome, reason=decision.reason), decision


def decide_batch(db: sqlite3.Connection, requests: Sequence[CardRequest], now: float,
                 new_code: Callable[[], str]) -> list[CardResult | Exception]:
    """LinkStore.decide_cards's transaction: the numbers locked, then each call in order."""
    lock_customers(db, [r.record.customer_number for r in requests])
    return each_in_savepoint(
        db, lambda db, request: decide_card(db, request, now, new_code), requests)


def decide_card(db: sqlite3.Connection, request: CardRequest, now: float,
                new_code: Callable[[], str]) -> CardResult:
    """One call of a batch, in its savepoint."""
    record = request.record
    if not claim_call(db, record):  # several daemons: another one has decided this call
        return decided_elsewhere(record)
    if request.judge is None:
        insert_decision(db, record, now, None, None)
        return CardResult(record=record, issued=None)
    if request.missed_call:
        return decide_missed_call(db, request, now)
    sql, params = facts_query(record.agent_id, record.customer_number, request.pair_since,
                              request.day_start, live_at=now)
    facts, pair_link = read_facts(db.execute(sql, params).fetchone())
    record, decision = judged(request, facts)
    if decision.outcome == Verdict.SKIP:
        insert_decision(db, record, now, None, None)
        return CardResult(record=record, issued=None)
    draft = request.draft
    issued = _issue_link(
        db, agent_id=record.agent_id, customer_number=record.customer_number,
        linkedid=record.linkedid, now=now, ttl=request.ttl, new_code=new_code,
        sms=None if draft is None else lambda code: draft(code, decision.not_before),
        customer_region=request.customer_region, decision=record, pair_link=pair_link)
    return CardResult(record=record, issued=issued)


def _issue_link(db: sqlite3.Connection, *, agent_id: str, customer_number: str, linkedid: str,
                now: float, ttl: float, new_code: Callable[[], str],
                sms: Callable[[str], SmsDraft] | None, customer_region: str,
                decision: DecisionRecord | None, pair_link: PairLink | None = None
                ) -> IssuedLink:
    """`pair_link`: the live link the decision's facts found (else it is looked up here)."""
    row = pair_link.row if pair_link is not None else db.execute(
        f"SELECT id, code {_PAIR_LINK}", (agent_id, customer_number, now)).fetchone()
    if row is not None:
        link_id, code, reused = int(row[0]), str(row[1]), True
        db.execute("UPDATE links SET expires_at = ? WHERE id = ? AND expires_at < ?",
                   (now + ttl, link_id, now + ttl))
    else:
        reused = False
        for _ in range(10):  # a clash on a 52-bit code is astronomically rare
            code = new_code()
            # No exception on a clash: PostgreSQL would abort the whole transaction.
            minted = db.execute(
                "INSERT INTO links (code, agent_id, customer_number, customer_region,"
                " linkedid, created_at, expires_at, pbx) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (code) DO NOTHING RETURNING id",
                (code, agent_id, customer_number, customer_region, linkedid, now,
                 now + ttl, decision.pbx if decision is not None else "")).fetchone()
            if minted is not None:
                break
        else:
            raise StoreError("could not mint a unique code after 10 tries")
        link_id = int(minted[0])
    sms_id = None
    if sms is not None:
        sms_id = queue_sms(db, link_id, SmsKind.CARD, customer_number, sms(code), now)
    if decision is not None:
        insert_decision(db, decision, now, link_id, sms_id)
    return IssuedLink(code=code, link_id=link_id, reused=reused, sms_id=sms_id)
