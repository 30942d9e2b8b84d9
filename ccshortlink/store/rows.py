"""Rows that several use cases write: the decision taken for a call, an event in an SMS's life."""

from __future__ import annotations

import sqlite3

from ccshortlink.core.records import DecisionRecord


def insert_decision(db: sqlite3.Connection, d: DecisionRecord, now: float,
                    link_id: int | None, sms_id: int | None) -> None:
    db.execute(
        "INSERT INTO decisions (linkedid, trigger, agent_id, agent_extension, customer_number,"
        " talk_seconds, outcome, reason, link_id, sms_id, decided_at, pbx)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (d.linkedid, d.trigger, d.agent_id, d.agent_extension, d.customer_number,
         d.talk_seconds, d.outcome, d.reason, link_id, sms_id, now, d.pbx))


def sms_event(db: sqlite3.Connection, sms_id: int, now: float, kind: str, detail: str) -> None:
    db.execute("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, ?, ?)",
               (sms_id, now, kind, detail))
