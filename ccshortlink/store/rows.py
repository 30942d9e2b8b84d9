"""Rows that several use cases write: a call's decision, an SMS's events, opt-out cancels."""

from __future__ import annotations

import sqlite3

from ccshortlink.core.records import DecisionRecord, SmsDraft


def insert_decision(db: sqlite3.Connection, d: DecisionRecord, now: float,
                    link_id: int | None, sms_id: int | None) -> None:
    db.execute(
        "INSERT INTO decisions (linkedid, trigger, agent_id, agent_extension, customer_number,"
        " talk_seconds, outcome, reason, link_id, sms_id, decided_at, pbx)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (d.linkedid, d.trigger, d.agent_id, d.agent_extension, d.customer_number,
         d.talk_seconds, d.outcome, d.reason, link_id, sms_id, now, d.pbx))


# What a daemon logs for a call another daemon on the same PostgreSQL decided first.
DECIDED_ELSEWHERE = "already decided (by another daemon on the same database)"


def lock_customer(db: sqlite3.Connection, customer_number: str) -> None:
    """Hold the number until the transaction ends, so that what it reads about the number
    (last SMS, daily count) stays true until it writes. SQLite's BEGIN IMMEDIATE already
    serialises every writer; PostgreSQL takes an advisory lock on the number."""
    lock = getattr(db, "lock_customer", None)
    if lock is not None:
        lock(customer_number)


def lock_customers(db: sqlite3.Connection, numbers: list[str]) -> None:
    """A batch's numbers, locked up front in one order: two daemons deciding the same batch
    in different orders then wait for each other instead of deadlocking."""
    lock = getattr(db, "lock_customers", None)
    ordered = sorted(set(numbers) - {""})
    if lock is not None and ordered:
        lock(ordered)


def claim_call(db: sqlite3.Connection, d: DecisionRecord) -> bool:
    """Take the call's key in this transaction; False when another daemon has it already.

    One daemon per SQLite file needs no key (its call tracker decides each call once); the
    PostgreSQL connection, shared by several daemons, answers from a unique index there.
    """
    claim = getattr(db, "claim_call", None)
    return True if claim is None else bool(claim(d))


def sms_event(db: sqlite3.Connection, sms_id: int, now: float, kind: str, detail: str) -> None:
    db.execute("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, ?, ?)",
               (sms_id, now, kind, detail))


def cancel_unsent_to_opted_out(db: sqlite3.Connection, customer_number: str, source: str,
                               now: float) -> int:
    """An opt-out stops every later card at once: one still queued (held by quiet hours,
    say) is not sent. An answer to the reply itself (the confirmation) is another kind and
    goes; one already being submitted is left to finish. Returns how many were cancelled."""
    return expire_queued(db, [int(r[0]) for r in db.execute(
        "SELECT id FROM sms WHERE destination = ? AND status = 'queued'"
        " AND kind IN ('card', 'missed_call')", (customer_number,))],
        "number opted out", source, now)


def expire_queued(db: sqlite3.Connection, sms_ids: list[int], error: str, by: str,
                  now: float) -> int:
    """Cancel queued SMS on purpose (`error` says why, `by` who): expired, never sent, and
    told apart from a failure by `stats`. Returns how many."""
    for sms_id in sms_ids:
        db.execute("UPDATE sms SET status = 'expired', error = ?, updated_at = ? WHERE id = ?",
                   (error, now, sms_id))
        sms_event(db, sms_id, now, "expired", f"not sent: {error} ({by})")
    return len(sms_ids)


def queue_sms(db: sqlite3.Connection, link_id: int | None, kind: str, destination: str,
              draft: SmsDraft, now: float, note: str = "") -> int:
    """An SMS into the outbox with its parts and its `queued` event; its id. Every kind of
    SMS (card, answer to a reply, missed call) goes in this way."""
    sms_id = int(db.execute(
        "INSERT INTO sms (link_id, kind, destination, text, data_coding, esm_class, status,"
        " not_before, expires_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING id",
        (link_id, kind, destination, draft.text, draft.data_coding, draft.esm_class,
         draft.not_before, draft.expires_at, now, now)).fetchone()[0])
    db.executemany("INSERT INTO sms_parts (sms_id, part_no, payload) VALUES (?, ?, ?)",
                   [(sms_id, i, part) for i, part in enumerate(draft.parts)])
    sms_event(db, sms_id, now, "queued", queued_detail(draft, note))
    return sms_id


def queued_detail(draft: SmsDraft, note: str = "") -> str:
    """What an SMS's `queued` event says."""
    return f"{len(draft.parts)} part(s)" + (f", {note}" if note else "")
