"""A batch of calls decided on PostgreSQL in one wait for the server per wave, and one more.

The shared per-call code (store/links.py) waits four times a call: for its claim, its facts,
its new link's id and its SMS's id. Here the batch is cut into waves of distinct customers
(usually the whole batch is one wave); a wave sends every call's claim-and-facts statement
and reads the answers once, judges the calls, then sends each call's writes as one statement
(link, SMS, parts, event and decision chained by a data-modifying WITH) without waiting: the
server runs statements in order, so a later wave's reads see them, and every wave's answers
are read with the COMMIT's, in the wait every transaction ends with. A customer's second call
in a batch goes in a later wave, so it sees the first one's SMS.

Any SQL error rolls the batch back: PgBase._run then runs it again strict, through the shared
per-call code, which finds whose error it was and keeps the others.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ccshortlink.core.records import CardRequest, CardResult, DecisionRecord, IssuedLink, SmsDraft
from ccshortlink.core.vocab import SmsKind, Verdict
from ccshortlink.store.links import (
    decide_batch,
    decide_card,
    decided_elsewhere,
    facts_query,
    judged,
    read_facts,
)
from ccshortlink.store.pg.base import PgBase
from ccshortlink.store.pg.connection import CLAIM_CALL, UNCLAIM_CALL, PgConnection, claim_key
from ccshortlink.store.rows import insert_decision, lock_customers, queued_detail
from ccshortlink.store.transactions import each_in_savepoint

Result = CardResult | Exception


class PgDecisions(PgBase):
    """decide_cards in waves; the shared per-call code when run again strict."""

    async def decide_cards(self, requests: Sequence[CardRequest], now: float,
                           new_code: Callable[[], str]) -> list[Result]:
        def work(db: sqlite3.Connection) -> Callable[[], list[Result]]:
            pg = cast(PgConnection, db)
            if pg.strict or pg.pipeline is None:
                decided = decide_batch(db, requests, now, new_code)
                return lambda: decided
            return _in_waves(pg, requests, now, new_code)

        return await self._write_then_read(work)


def _in_waves(db: PgConnection, requests: Sequence[CardRequest], now: float,
              new_code: Callable[[], str]) -> Callable[[], list[Result]]:
    """The batch decided; what reads its answers once the commit is in (_run_then_read)."""
    lock_customers(cast(sqlite3.Connection, db), [r.record.customer_number for r in requests])
    results: list[Result | _Written | None] = [None] * len(requests)
    for wave in _waves(requests):
        if len(wave) == 1 and requests[wave[0]].missed_call:  # rare: the shared code
            results[wave[0]] = each_in_savepoint(
                cast(sqlite3.Connection, db),
                lambda db, r: decide_card(db, r, now, new_code), [requests[wave[0]]])[0]
            continue
        # A later wave's statements see what this one wrote (the server runs them in order):
        # every wave's answers are read with the commit's.
        decided = _decide_wave(db, [requests[i] for i in wave], now, new_code)
        for i, result in zip(wave, decided, strict=True):
            results[i] = result
    assert all(r is not None for r in results), "a call of the batch was not decided"
    return lambda: [r.read() if isinstance(r, _Written) else cast(Result, r) for r in results]


@dataclass(frozen=True)
class _Written:
    """A card whose writes were sent; its link's and SMS's ids are in the statement's answer."""

    record: DecisionRecord
    code: str
    reused: bool
    cursor: Any

    def read(self) -> CardResult:
        link_id, sms_id = self.cursor.fetchone()
        return CardResult(record=self.record, issued=IssuedLink(
            code=self.code, link_id=int(link_id), reused=self.reused,
            sms_id=None if sms_id is None else int(sms_id)))


def _waves(requests: Sequence[CardRequest]) -> Iterator[list[int]]:
    """Runs of the batch, in order, in which no customer comes twice; a missed-call SMS (its
    own facts) alone."""
    wave: list[int] = []
    seen: set[str] = set()
    for i, request in enumerate(requests):
        number = request.record.customer_number
        if wave and (request.missed_call or number in seen):
            yield wave
            wave, seen = [], set()
        wave.append(i)
        seen.add(number)
        if request.missed_call:
            yield wave
            wave, seen = [], set()
    if wave:
        yield wave


def _decide_wave(db: PgConnection, requests: Sequence[CardRequest], now: float,
                 new_code: Callable[[], str]) -> list[Result | _Written]:
    asked = [db.execute(*_claim_and_facts(r, now)) for r in requests]
    answers: list[Any] = [cursor.fetchone() for cursor in asked]  # one wait for them all
    results: list[Result | _Written] = []
    for request, row in zip(requests, answers, strict=True):
        record = request.record
        if not row[0]:
            results.append(decided_elsewhere(record))
            continue
        if request.judge is None:
            insert_decision(cast(sqlite3.Connection, db), record, now, None, None)
            results.append(CardResult(record=record, issued=None))
            continue
        try:  # the policy and the template are this call's own: a failure is its alone
            facts, pair_link = read_facts(row[1:])
            record, decision = judged(request, facts)
            live = pair_link.row if pair_link is not None else None
            code = live[1] if live is not None else new_code()
            draft = None
            if decision.outcome != Verdict.SKIP and request.draft is not None:
                draft = request.draft(code, decision.not_before)
        except Exception as exc:
            if record.linkedid:
                db.execute(UNCLAIM_CALL, claim_key(record))
            results.append(exc)
            continue
        if decision.outcome == Verdict.SKIP:
            insert_decision(cast(sqlite3.Connection, db), record, now, None, None)
            results.append(CardResult(record=record, issued=None))
            continue
        results.append(_Written(record, code, live is not None, db.execute(
            *_write_card(request, record, code, None if live is None else live[0], draft,
                         now))))
    return results


# Taking the call's key answers whether this transaction took it (PgConnection.claim_call).
_CLAIM = f"WITH c AS ({CLAIM_CALL}) SELECT EXISTS (SELECT 1 FROM c)"


def _claim_and_facts(request: CardRequest, now: float) -> tuple[str, tuple[object, ...]]:
    """One statement: the claim's answer first, then (when judged) the facts' columns."""
    record = request.record
    sql, params = (_CLAIM, claim_key(record)) if record.linkedid else ("SELECT true", ())
    if request.judge is None:
        return sql, params
    facts, facts_params = facts_query(record.agent_id, record.customer_number,
                                      request.pair_since, request.day_start, live_at=now)
    return sql + ", " + facts.removeprefix("SELECT "), params + facts_params


def _write_card(request: CardRequest, d: DecisionRecord, code: str, link_id: int | None,
                draft: SmsDraft | None, now: float) -> tuple[str, tuple[object, ...]]:
    """The card's writes in one statement, as links._issue_link and rows.queue_sms make
    them: the pair's link extended (or a new one), its SMS with parts and `queued` event,
    the decision; answers (link id, SMS id). A clash on a new code fails the statement (the
    strict run draws another)."""
    expires = now + request.ttl
    if link_id is None:
        parts = ["l AS (INSERT INTO links (code, agent_id, customer_number, customer_region,"
                 " linkedid, created_at, expires_at, pbx) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                 " RETURNING id)"]
        params: tuple[object, ...] = (code, d.agent_id, d.customer_number,
                                      request.customer_region, d.linkedid, now, expires, d.pbx)
    else:
        parts = ["l AS (SELECT ?::bigint AS id)",
                 "x AS (UPDATE links SET expires_at = ? WHERE id = ? AND expires_at < ?)"]
        params = (link_id, expires, link_id, expires)
    if draft is not None:
        parts += ["s AS (INSERT INTO sms (link_id, kind, destination, text, data_coding,"
                  " esm_class, status, not_before, expires_at, created_at, updated_at)"
                  " SELECT id, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ? FROM l RETURNING id)",
                  "p AS (INSERT INTO sms_parts (sms_id, part_no, payload)"
                  " SELECT s.id, p.n - 1, p.payload FROM s,"
                  " unnest(?::bytea[]) WITH ORDINALITY AS p (payload, n))",
                  "e AS (INSERT INTO sms_events (sms_id, at, kind, detail)"
                  " SELECT id, ?, 'queued', ? FROM s)"]
        params += (SmsKind.CARD, d.customer_number, draft.text, draft.data_coding,
                   draft.esm_class, draft.not_before, draft.expires_at, now, now,
                   list(draft.parts), now, queued_detail(draft))
    sms = "(SELECT id FROM s)" if draft is not None else "NULL::bigint"
    parts.append("d AS (INSERT INTO decisions (linkedid, trigger, agent_id, agent_extension,"
                 " customer_number, talk_seconds, outcome, reason, link_id, sms_id, decided_at,"
                 f" pbx) SELECT ?, ?, ?, ?, ?, ?, ?, ?, l.id, {sms}, ?, ? FROM l)")
    params += (d.linkedid, d.trigger, d.agent_id, d.agent_extension, d.customer_number,
               d.talk_seconds, d.outcome, d.reason, now, d.pbx)
    return "WITH " + ", ".join(parts) + f" SELECT l.id, {sms} FROM l", params
