"""The replies schema on a real SQLite file: a schema-2 database migrated with its SMS kept,
answers without a link through the outbox, and a storm decided by the database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from ccshortlink.core.policy import PolicyConfig
from ccshortlink.core.records import ReplyRecord, SmsDraft
from ccshortlink.core.replywords import may_answer
from ccshortlink.core.vocab import ReplyKind, SmsKind
from ccshortlink.store import SCHEMA_VERSION, Store
from ccshortlink.store.migrate import migrate, migrations
from ccshortlink.store.reports import Reports
from tests.support.pgkit import open_backend

NUMBER = "+8613800138000"
NOW = 1_700_000_000.0


def schema_2_with_one_card(path: Path) -> None:
    """A database as the previous release left it: a link and its SMS, sent."""
    db = sqlite3.connect(path, isolation_level=None)
    for version, sql in migrations():
        if version <= 2:
            migrate(version, sql, db)
    db.execute("INSERT INTO links (id, code, agent_id, customer_number, created_at, expires_at)"
               " VALUES (1, 'a2B3c4D5e', 'CS1001', ?, ?, ?)", (NUMBER, NOW, NOW + 86400))
    db.execute("INSERT INTO sms (id, link_id, destination, text, data_coding, esm_class, status,"
               " not_before, expires_at, created_at, updated_at) VALUES"
               " (1, 1, ?, 'card', 8, 0, 'delivered', ?, ?, ?, ?)",
               (NUMBER, NOW, NOW + 86400, NOW, NOW))
    db.execute("INSERT INTO sms_parts (sms_id, part_no, payload, message_id) VALUES"
               " (1, 0, x'00', 'm1')")
    db.close()


def draft(text: str = "【云客服】您已退订") -> SmsDraft:
    return SmsDraft(text=text, data_coding=8, esm_class=0, parts=(text.encode("utf-16-be"),),
                    not_before=NOW, expires_at=NOW + 86400)


async def test_a_schema_2_database_is_migrated_with_its_sms_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema_2_with_one_card(path)
    with Reports.open(path) as reports:  # a trace before the daemon migrates it still works
        assert reports.trace(NUMBER[1:], PolicyConfig(), NOW) is not None
        assert reports.reply_counts(0)["answered"] == 0
    async with await Store.open(path) as store:
        assert (await store._one("PRAGMA user_version"))[0] == SCHEMA_VERSION
        assert (await store._one("PRAGMA foreign_keys"))[0] == 1
        rows = await store._all("SELECT id, link_id, kind, status FROM sms")
        assert [tuple(r) for r in rows] == [(1, 1, "card", "delivered")]
        assert await store.record_receipt("m1", "DELIVRD", "000", NOW) == 1  # parts kept
        with pytest.raises(sqlite3.IntegrityError):  # the link must still exist
            await store._write(lambda db: db.execute(
                "INSERT INTO sms (link_id, destination, text, data_coding, esm_class, status,"
                " not_before, expires_at, created_at, updated_at)"
                " VALUES (99, 'x', 'x', 0, 0, 'queued', 0, 0, 0, 0)"))
        # an answer has no link, and the outbox sends it all the same
        result = await store.record_reply(ReplyRecord(NUMBER, "TD", ReplyKind.OPT_OUT, NOW),
                                          draft(), SmsKind.OPT_OUT_CONFIRMATION,
                                          lambda last: may_answer(last, NOW))
        assert result.changed and result.sms_id == 2
        claimed = await store.claim_due_sms(NOW, 10)
        assert [(s.id, s.code, s.destination) for s in claimed.sms] == [(2, "", NUMBER)]


async def test_a_storm_is_decided_by_the_database(tmp_path: Path, backend: str,
                                                  request: pytest.FixtureRequest) -> None:
    async with await open_backend(backend, request, tmp_path / "db.sqlite") as store:
        results = await asyncio.gather(*(store.record_reply(
            ReplyRecord(NUMBER, "HELP", ReplyKind.HELP, NOW + i), draft("help"),
            SmsKind.HELP_REPLY, lambda last, i=i: may_answer(last, NOW + i)) for i in range(10)))
        assert [r.sms_id is not None for r in results] == [True] + [False] * 9
        # an hour on, the next one is answered again; other text never is
        later = await store.record_reply(ReplyRecord(NUMBER, "HELP", ReplyKind.HELP, NOW + 3600),
                                         draft("help"), SmsKind.HELP_REPLY,
                                         lambda last: may_answer(last, NOW + 3600))
        other = await store.record_reply(ReplyRecord(NUMBER, "hi", ReplyKind.OTHER, NOW + 7200),
                                         None, None, lambda last: True)
        assert later.sms_id is not None and other.sms_id is None and other.not_answered == ""
        # answers to replies do not count against the daily cap of cards
        facts = await store.send_facts("CS1001", NUMBER, pair_since=0, day_start=0)
        assert facts.sms_since_day_start == 0
        assert (await store._one("SELECT COUNT(*) FROM replies"))[0] == 12
