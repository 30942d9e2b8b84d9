"""The missed-call SMS on a real SQLite file: queued with no link, sent, one per window; the
schema migration that lets an SMS have no link keeps every SMS already in the outbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ccshortlink.core.callroute import CallRoute
from ccshortlink.core.calls import CallClosed
from ccshortlink.core.vocab import Trigger
from ccshortlink.store import Store
from ccshortlink.store.migrate import migrate, migrations
from tests.support.desk import ScriptedGateway, open_desk
from tests.support.pgkit import database_for

NOON = 1_767_240_000.0  # 2026-01-01 12:00 in Shanghai
CUSTOMER = "+8613800138000"
ABANDONED = CallRoute(started_by_agent=False, queues=("support",), abandoned=True)


def missed(linkedid: str, number: str = CUSTOMER,
           route: CallRoute | None = ABANDONED) -> CallClosed:
    return CallClosed(linkedid, "", number, None, "no agent answered", Trigger.NOT_ANSWERED,
                      route=route)


async def test_one_missed_call_sms_per_window_with_no_link(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    database = database_for(backend, request, tmp_path / "state" / "ccshortlink.db")
    desk = await open_desk(tmp_path, NOON, policy={"missed_call_sms": True},
                           web={"hotline": "400-820-8820"},
                           database={"url": database.url} if database.url else {})
    try:
        first = await desk.cards.handle(missed("1.0"))
        assert first.status == "queued" and first.code == "" and first.sms_id is not None
        gateway = ScriptedGateway()
        await desk.send_due(gateway)
        assert gateway.submitted == [CUSTOMER]
        desk.clock.now += 600
        again = await desk.cards.handle(missed("2.0"))
        assert (again.status, again.reason) == (
            "skipped", "missed call in queue support (abandoned); a missed-call SMS went to "
                       "this number within 24h")
        # not a queue call: recorded as before, no SMS
        direct = await desk.cards.handle(missed("3.0", "+8613900139000", CallRoute(False)))
        assert direct.status == "skipped" and direct.reason == "no agent answered"
        await desk.store.set_opt_out("+8613700137000", True, "sms", desk.clock())
        opted = await desk.cards.handle(missed("4.0", "+8613700137000"))
        assert opted.status == "skipped"
        assert opted.reason.endswith("number opted out (on the do-not-send list)")
        await desk.send_due(gateway)
        assert gateway.submitted == [CUSTOMER]
        counts = await desk.store.sms_status_counts()
        assert counts == {"submitted": 1}
    finally:
        await desk.store.close()


async def test_missed_call_sms_is_off_by_default(tmp_path: Path) -> None:
    desk = await open_desk(tmp_path, NOON, web={"hotline": "400-820-8820"})
    try:
        outcome = await desk.cards.handle(missed("1.0"))
        assert outcome.status == "skipped" and outcome.reason == "no agent answered"
        assert await desk.store.sms_status_counts() == {}
    finally:
        await desk.store.close()


def schema_2_with_one_sms(path: Path) -> None:
    """A database as the last release left it: schema 2, one SMS with its parts and events."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    for version, sql in migrations():
        if version <= 2:
            db.execute("BEGIN")
            migrate(version, sql, db)
            db.execute("COMMIT")
    db.execute("INSERT INTO links (id, code, agent_id, customer_number, created_at, expires_at)"
               " VALUES (7, 'a2B3c4D5e', 'CS1001', ?, 1.0, 9e9)", (CUSTOMER,))
    db.execute("INSERT INTO sms (id, link_id, destination, text, data_coding, esm_class, status,"
               " not_before, expires_at, created_at, updated_at)"
               " VALUES (3, 7, ?, 'hello', 0, 0, 'queued', 1.0, 9e9, 1.0, 1.0)", (CUSTOMER,))
    db.execute("INSERT INTO sms_parts (sms_id, part_no, payload) VALUES (3, 0, x'68656c6c6f')")
    db.execute("INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (3, 1.0, 'queued', '')")
    db.close()


async def test_the_migration_keeps_the_outbox_and_its_links(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema_2_with_one_sms(path)
    store = await Store.open(path)
    try:
        claimed = await store.claim_due_sms(2.0, 10)
        [sms] = claimed.sms
        assert (sms.id, sms.code, sms.destination, sms.parts) == (3, "a2B3c4D5e", CUSTOMER,
                                                                (b"hello",))
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("SELECT COUNT(*) FROM sms_events WHERE sms_id = 3").fetchone() == (1,)
        assert db.execute("SELECT \"notnull\" FROM pragma_table_info('sms')"
                          " WHERE name = 'link_id'").fetchone() == (0,)
        # a part must still belong to an SMS
        db.execute("PRAGMA foreign_keys=ON")
        try:
            db.execute("INSERT INTO sms_parts (sms_id, part_no, payload) VALUES (99, 0, x'00')")
            raise AssertionError("a part of no SMS was accepted")
        except sqlite3.IntegrityError:
            pass
    finally:
        db.close()
