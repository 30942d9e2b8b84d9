"""`ccshortlink stats`, `agents` and `opt-out` through the real CLI; retention on a real file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ccshortlink.core.policy import day_start
from ccshortlink.core.privacy import anonymise_number
from ccshortlink.core.retention import DAY, RetentionSchedule, retention_cutoff
from tests.support.configfile import write_config
from tests.support.daemon import ccshortlink
from tests.support.desk import ZONE, Desk, ScriptedGateway, open_desk
from tests.support.pgkit import database_for, peek_db, reports_for

A, B, C, D = "+8613800138000", "+8613912345678", "+8615012345678", "+8618612345678"


# --- stats ---------------------------------------------------------------------------------

async def write_week(folder: Path, database: dict[str, object] | None = None) -> Desk:
    """Something ten days ago (outside both periods), three days ago, and today."""
    now = time.time()
    today = day_start(now, ZONE)
    desk = await open_desk(folder, today - 10 * DAY, policy={"min_talk_seconds": 5,
                                                             "timezone": ZONE},
                           database=database or {})
    store, clock = desk.store, desk.clock
    old = await desk.call("1.1", "1001", A, 60)
    await desk.send_due(ScriptedGateway())
    await store.record_visit(old.code, "open", "198.51.100.0", "Mozilla/5.0", clock())

    clock.now = today - 3 * DAY + 3600
    await desk.call("2.1", "1001", B, 60)
    week = await desk.call("2.2", "1002", C, 60)
    await desk.call("2.3", "4711", D, 60)  # not an agent's extension
    await desk.send_due(ScriptedGateway(prefix="week"))
    await store.record_receipt("week1-0", "UNDELIV", "001", clock())  # B's SMS
    await store.record_receipt("week2-0", "DELIVRD", "000", clock())  # C's SMS
    for kind in ("open", "open", "call"):
        await store.record_visit(week.code, kind, "198.51.100.0", "Mozilla/5.0", clock())
    await store.rate_link(week.code, 4, "", clock())

    clock.now = today + (now - today) / 2
    first = await desk.call("3.1", "1001", A, 60)
    await desk.call("3.2", "1001", D, 2)  # too short
    await desk.send_due(ScriptedGateway(prefix="today"))
    await store.record_receipt("today1-0", "DELIVRD", "000", clock())
    for kind in ("open", "open", "call", "vcard"):
        await store.record_visit(first.code, kind, "198.51.100.0", "Mozilla/5.0", clock())
    await store.rate_link(first.code, 5, "很好", clock())
    waiting = await desk.call("3.3", "1002", B, 60)  # queued, the SMSC has not had it yet
    assert waiting.status == "queued"
    return desk


def figures(calls: int, skipped: int, sent: int, delivered: int, failed: int, waiting: int,
            opened: int, called_back: int, ratings: int,
            average: float | None) -> dict[str, object]:
    return {"calls_decided": calls, "skipped": skipped, "sms_sent": sent,
            "sms_delivered": delivered, "sms_failed": failed, "sms_waiting": waiting,
            "links_opened": opened, "called_back": called_back, "callbacks_connected": 0,
            "ratings": ratings, "average_rating": average}


async def test_stats_count_today_and_the_last_7_days_per_agent(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    database = database_for(backend, request, tmp_path / "state" / "ccshortlink.db")
    desk = await write_week(tmp_path, {"url": database.url} if database.url else {})
    await desk.store.close()
    result = ccshortlink(desk.config_path, "stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    today, week = stats["periods"]
    assert (today["period"], week["period"]) == ("today", "7_days")
    assert today["since"].endswith("T00:00:00+08:00") and week["since"] < today["since"]
    assert today["all"] == figures(3, 1, 1, 1, 0, 1, 1, 1, 1, 5.0)
    assert week["all"] == figures(6, 2, 3, 2, 1, 1, 2, 2, 2, 4.5)
    assert today["agents"] == {
        "CS1001": {"name": "王小梅", **figures(2, 1, 1, 1, 0, 0, 1, 1, 1, 5.0)},
        "CS1002": {"name": "Daniel Chen", **figures(1, 0, 0, 0, 0, 1, 0, 0, 0, None)}}
    assert week["agents"] == {
        "CS1001": {"name": "王小梅", **figures(3, 1, 2, 1, 1, 0, 1, 1, 1, 5.0)},
        "CS1002": {"name": "Daniel Chen", **figures(2, 0, 1, 1, 0, 1, 1, 1, 1, 4.0)},
        "": {"name": "", **figures(1, 1, 0, 0, 0, 0, 0, 0, 0, None)}}

    text = ccshortlink(desk.config_path, "stats")
    assert text.returncode == 0, text.stderr
    blocks = text.stdout.split("\n\n")
    assert blocks[0].startswith("Today (since ") and blocks[1].startswith("Last 7 days (since ")
    rows = {label: rest.split() for label, _, rest in
            (line.partition("  ") for line in blocks[1].splitlines()[2:])}
    assert rows["all agents"] == ["6", "2", "3", "2", "1", "1", "2", "2", "4.5", "(2)"]
    assert rows["CS1001 王小梅"] == ["3", "1", "2", "1", "1", "0", "1", "1", "5.0", "(1)"]
    assert rows["(no agent)"] == ["1", "1", "0", "0", "0", "0", "0", "0", "-"]


# --- agents --------------------------------------------------------------------------------

async def test_agents_are_listed_and_a_broken_file_exits_78_with_every_problem(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    listed = ccshortlink(config, "agents")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["CS", "ID", "name", "extensions", "phone"]
    assert lines[1].split() == ["CS1001", "王小梅", "1001", "+862088880000,,1001"]
    assert lines[2].split() == ["CS1002", "Daniel", "Chen", "1002", "+862088880000,,1002"]
    assert "2 agents" in listed.stderr
    as_json = json.loads(ccshortlink(config, "agents", "--json").stdout)
    assert [(a["id"], a["extensions"]) for a in as_json] == [("CS1001", ["1001"]),
                                                           ("CS1002", ["1002"])]

    (tmp_path / "agents.yaml").write_text(
        "agents:\n"
        "  - id: CS1001\n    extensions: ['1001']\n    name: Ann\n    phone: '+861'\n"
        "  - id: CS1001\n    extensions: ['1001']\n    name: Bo\n"
        "  - id: CS1003\n    extensions: []\n    name: Cy\n    phone: '+862'\n    colour: red\n",
        encoding="utf-8")
    broken = ccshortlink(config, "agents")
    assert broken.returncode == 78 and broken.stdout == ""
    agents_file = tmp_path / "agents.yaml"
    for problem in (f"{agents_file}:6: duplicate id 'CS1001' (first at {agents_file}:2)",
                    f"{agents_file}:6: agent is missing 'phone'",
                    f"{agents_file}:9: 'extensions' must be a non-empty list",
                    f"{agents_file}:9: unknown field 'colour'"):
        assert problem in broken.stderr


# --- opt-out -------------------------------------------------------------------------------

async def test_opt_out_from_the_cli_stops_and_restarts_sending(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    database = database_for(backend, request, tmp_path / "state" / "ccshortlink.db")
    config = write_config(tmp_path, database={"url": database.url} if database.url else {})
    added = ccshortlink(config, "opt-out", "add", "+86 138 0013 8000")
    assert added.returncode == 0 and added.stdout.strip() == f"{A} added to the do-not-send list"
    again = ccshortlink(config, "opt-out", "add", "13800138000")
    assert again.stdout.strip() == f"{A} already on the do-not-send list"
    listed = ccshortlink(config, "opt-out", "list", "--json")
    assert [(e["customer_number"], e["source"]) for e in json.loads(listed.stdout)] == [
        (A, "operator")]

    refused = ccshortlink(config, "send", "--agent", "CS1001", "--to", "13800138000")
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {"status": "skipped",
                                          "reason": "number opted out (on the do-not-send list)"}

    removed = ccshortlink(config, "opt-out", "remove", A)
    assert removed.stdout.strip() == f"{A} removed from the do-not-send list"
    sent = ccshortlink(config, "send", "--agent", "CS1001", "--to", "13800138000")
    assert sent.returncode == 0 and json.loads(sent.stdout)["status"] == "queued"
    empty = ccshortlink(config, "opt-out", "list")
    assert empty.stdout == "" and "empty" in empty.stderr

    bad = ccshortlink(config, "opt-out", "add", "1002")
    assert bad.returncode == 2 and "internal number" in bad.stderr


# --- retention -----------------------------------------------------------------------------

def test_retention_runs_first_then_once_a_day() -> None:
    schedule = RetentionSchedule(days=30)
    assert schedule.due(1000.0)
    schedule.done(1000.0)
    assert schedule.cutoff(1000.0 + 30 * DAY) == 1000.0 == retention_cutoff(1000.0 + 30 * DAY, 30)
    assert not schedule.due(1000.0 + DAY - 1) and not schedule.due(1000.0 - 3600)
    assert schedule.due(1000.0 + DAY)
    assert anonymise_number(A) == "+86138****8000" == anonymise_number("+86138****8000")
    assert anonymise_number("1002") == "1002"  # an extension identifies nobody


def table(store: object, sql: str) -> list[tuple[object, ...]]:
    with peek_db(store) as conn:
        return [tuple(row) for row in conn.execute(sql)]


async def test_retention_deletes_and_anonymises_old_records_and_counts_still_add_up(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    now = time.time()
    database = database_for(backend, request, tmp_path / "state" / "ccshortlink.db")
    desk = await open_desk(tmp_path, now - 70 * DAY,
                           policy={"min_talk_seconds": 5, "link_ttl_days": 60},
                           database={"url": database.url} if database.url else {})
    store, clock = desk.store, desk.clock
    expired = await desk.call("1.1", "1001", A, 60)  # its link expired ten days ago
    await desk.send_due(ScriptedGateway())
    await store.record_receipt("m1-0", "DELIVRD", "000", clock())
    await store.record_visit(expired.code, "open", "198.51.100.0", "Mozilla/5.0", clock())
    await store.rate_link(expired.code, 5, "耐心", clock())
    clock.now = now - 40 * DAY
    live = await desk.call("2.1", "1002", B, 60)  # its link is still live
    await desk.call("2.2", "1001", A, 2)
    await desk.send_due(ScriptedGateway())
    clock.now = now - 2 * DAY
    recent = await desk.call("3.1", "1001", C, 60)
    await desk.send_due(ScriptedGateway())
    await store.record_visit(recent.code, "open", "198.51.100.0", "Mozilla/5.0", clock())
    clock.now = now - 70 * DAY + 600
    stuck = await desk.call("4.1", "1002", D, 60)  # old, and still waiting in the outbox
    with reports_for(store) as reports:
        before = reports.stats(0)

    counts = await store.apply_retention(retention_cutoff(now, 30), now, anonymise_number)
    assert counts == {"visits_deleted": 1, "sms_events_deleted": 6, "sms_parts_deleted": 3,
                      "links_anonymised": 2, "decisions_anonymised": 4, "sms_anonymised": 2,
                      "replies_anonymised": 0}
    again = await store.apply_retention(retention_cutoff(now, 30), now, anonymise_number)
    assert set(again.values()) == {0}
    await store.close()

    db = store
    assert table(db, "SELECT code, customer_number FROM links ORDER BY id") == [
        (expired.code, "+86138****8000"), (live.code, B), (recent.code, C),
        (stuck.code, "+86186****5678")]
    assert table(db, "SELECT linkedid, customer_number FROM decisions ORDER BY id") == [
        ("1.1", "+86138****8000"), ("2.1", "+86139****5678"), ("2.2", "+86138****8000"),
        ("3.1", C), ("4.1", "+86186****5678")]
    rows = table(db, "SELECT destination, status, text FROM sms ORDER BY id")
    assert [r[:2] for r in rows] == [("+86138****8000", "delivered"),
                                     ("+86139****5678", "submitted"), (C, "submitted"),
                                     (D, "queued")]
    assert "王小梅" in str(rows[0][2])  # texts are kept
    assert table(db, "SELECT DISTINCT sms_id FROM sms_parts ORDER BY sms_id") == [(3,), (4,)]
    assert table(db, "SELECT DISTINCT sms_id FROM sms_events ORDER BY sms_id") == [(3,)]
    assert table(db, "SELECT link_id FROM visits") == [(3,)]
    assert table(db, "SELECT stars, comment FROM ratings") == [(5, "耐心")]
    with reports_for(store) as reports:
        after = reports.stats(0)
    for agent, figures_before in before.items():
        kept = {k: v for k, v in figures_before.as_dict().items() if k != "links_opened"}
        assert {k: v for k, v in after[agent].as_dict().items() if k != "links_opened"} == kept

    # the anonymised customer is no longer traceable; the recent one still is
    assert ccshortlink(desk.config_path, "trace", A).returncode == 1
    assert C in ccshortlink(desk.config_path, "trace", C).stdout
    assert "+86138****8000" in ccshortlink(desk.config_path, "trace", expired.code).stdout
