"""`ccshortlink trace` through the real CLI, on a database filled by the real sending path."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from ccshortlink.core.policy import day_start
from ccshortlink.smpp.client import SubmitRejected
from tests.support.configfile import write_config
from tests.support.daemon import ccshortlink
from tests.support.desk import ZONE, Desk, ScriptedGateway, open_desk
from tests.support.pgkit import database_for

CUSTOMER = "+8613800138000"
OTHER_CUSTOMER = "+8613912345678"


def noon_days_ago(days: int) -> float:
    return day_start(time.time() - days * 86400, ZONE) + 12 * 3600


async def write_story(folder: Path, database: dict[str, object] | None = None
                      ) -> tuple[Desk, dict[str, str]]:
    """One customer's two days with two agents, and another customer's call beside it."""
    desk = await open_desk(folder, noon_days_ago(2),
                           policy={"min_talk_seconds": 5, "quiet_start": "21:00",
                                   "quiet_end": "08:00", "timezone": ZONE},
                           database=database or {})
    clock, store = desk.clock, desk.store
    first = await desk.call("1790000001.10", "1001", "13800138000", 95)
    other = await desk.call("1790000001.20", "1001", OTHER_CUSTOMER, 40)
    await desk.send_due(ScriptedGateway())
    await store.record_receipt("m1-0", "DELIVRD", "000", clock() + 4)
    clock.now += 60
    for kind in ("open", "call", "vcard"):
        await store.record_visit(first.code, kind, "203.0.113.0", "Mozilla/5.0 (iPhone)", clock())
        clock.now += 10
    await store.rate_link(first.code, 5, "耐心细致", clock())
    clock.now += 60
    await desk.call("1790000002.10", "1001", "13800138000", 2)  # too short
    clock.now += 60
    await desk.call("1790000003.10", "1001", "+86 138 0013 8000", 40)  # same pair, same day
    clock.now += 10.5 * 3600  # 22:3x local: quiet hours
    late = await desk.call("1790000004.10", "1002", "008613800138000", 50)
    clock.now += 10 * 3600  # the next morning, quiet hours over
    await desk.send_due(ScriptedGateway(ConnectionError("SMSC link down")))
    clock.now += 31
    await desk.send_due(ScriptedGateway(SubmitRejected(0x0B)))
    assert late.status == "deferred" and other.status == "queued"
    return desk, {"first": first.code, "late": late.code, "other": other.code}


Story = tuple[Path, dict[str, str]]  # the config file, and the codes of the story's links


@pytest.fixture
async def story(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Story:
    """On each store: the CLI reads the SQLite file, or the test's PostgreSQL database."""
    database = database_for(backend, request, tmp_path / "state" / "ccshortlink.db")
    desk, codes = await write_story(tmp_path, {"url": database.url} if database.url else {})
    await desk.store.close()
    return desk.config_path, codes


def timeline(output: str) -> list[str]:
    """The timeline lines of the human output, without their time stamps."""
    return [line[21:] for line in output.splitlines() if line[:4].isdigit()]


async def test_a_number_in_any_form_tells_its_whole_story_in_order(story: Story) -> None:
    config, codes = story
    plain = ccshortlink(config, "trace", "13800138000")
    spaced = ccshortlink(config, "trace", "+86 138 0013 8000")
    assert plain.returncode == 0, plain.stderr
    assert spaced.stdout == plain.stdout
    out = plain.stdout
    assert out.startswith(f"Customer {CUSTOMER}: 4 decision(s), 2 link(s), 2 SMS")
    lines = timeline(out)
    kinds = [line[:14].strip() for line in lines]
    assert kinds == [
        "decision", "link created", "SMS queued", "SMS submitted", "SMS receipt",
        "page opened", "call tapped", "vCard saved", "rated",
        "decision", "decision",
        "decision", "link created", "SMS queued", "SMS retry", "SMS failed"]
    text = "\n".join(lines)
    assert f"call ended 1790000001.10, CS1001 (ext 1001), talk 95s, customer {CUSTOMER} → sent" \
        f" [link {codes['first']}]" in text
    assert "message ids m1-0,m1-1" in text and "m1-0 DELIVRD err:000" in text
    assert "talk 2s, customer" in text and "skipped: talk time 2s below minimum 5s" in text
    assert "skipped: same agent texted this number within 24h" in text
    assert f"CS1002 (ext 1002), talk 50s, customer {CUSTOMER} → deferred: quiet hours in" \
        f" Asia/Shanghai, deferred to 08:00 [link {codes['late']}]" in text
    assert "SMS retry      #3 ConnectionError('SMSC link down'); next try at" in text
    assert text.splitlines()[-1] == "SMS failed     #3 SMSC rejected submit_sm with status 0x0B"
    assert f"rated          {codes['first']} 5/5 “耐心细致”" in text
    # the SMS as sent, and nothing of the other customer
    assert "下次可直接联系TA：https://cs.example.com/" + codes["first"] in out
    assert "delivered after 1 attempt(s)" in out and "failed after 2 attempt(s)" in out
    assert codes["other"] not in out and "13912345678" not in out


async def test_times_are_local_and_json_is_the_same_story(story: Story) -> None:
    config, codes = story
    result = ccshortlink(config, "trace", CUSTOMER, "--json")
    assert result.returncode == 0, result.stderr
    trace = json.loads(result.stdout)
    assert (trace["subject"], trace["key"], trace["timezone"]) == ("customer", CUSTOMER, ZONE)
    stamps = [event["at"] for event in trace["events"]]
    assert stamps == sorted(stamps) and all(s.endswith("+08:00") for s in stamps)
    assert stamps[0][11:16] == "12:00"  # noon in Shanghai, whatever zone the test runs in
    decisions = [e for e in trace["events"] if e["kind"] == "decision"]
    assert [(d["trigger"], d["agent"], d["outcome"]) for d in decisions] == [
        ("hangup", "CS1001", "sent"), ("hangup", "CS1001", "skipped"),
        ("hangup", "CS1001", "skipped"), ("hangup", "CS1002", "deferred")]
    failed = [e for e in trace["events"] if e["kind"] == "sms_failed"]
    assert failed[0]["smpp_status"] == 0x0B
    assert {s["code"]: s["status"] for s in trace["sms"]} == {codes["first"]: "delivered",
                                                             codes["late"]: "failed"}
    assert [s["message_ids"] for s in trace["sms"]][0] == ["m1-0", "m1-1"]
    assert {link["code"] for link in trace["links"]} == {codes["first"], codes["late"]}


async def test_a_code_and_a_linkedid_tell_their_own_part(story: Story) -> None:
    config, codes = story
    link = ccshortlink(config, "trace", codes["first"])
    assert link.returncode == 0, link.stderr
    assert link.stdout.startswith(f"Link {codes['first']}:")
    # the pair's later refusals belong to the link's story; the other agent's link does not
    assert "same agent texted this number" in link.stdout and "page opened" in link.stdout
    assert codes["late"] not in link.stdout and "quiet hours" not in link.stdout

    call = ccshortlink(config, "trace", "1790000004.10")
    assert call.returncode == 0, call.stderr
    kinds = [line[:14].strip() for line in timeline(call.stdout)]
    assert kinds == ["decision", "link created", "SMS queued", "SMS retry", "SMS failed"]
    assert codes["first"] not in call.stdout

    other = ccshortlink(config, "trace", codes["other"])
    assert OTHER_CUSTOMER in other.stdout and CUSTOMER not in other.stdout


async def test_nothing_recorded_exits_1(story: Story) -> None:
    config, _ = story
    for query in ("13700000000", "1790000009.99", "zzzzzzzzz"):
        result = ccshortlink(config, "trace", query)
        assert result.returncode == 1 and result.stdout == ""
        assert f"nothing recorded for {query!r}" in result.stderr


async def test_a_missing_or_foreign_database_is_reported_not_changed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = ccshortlink(config, "trace", CUSTOMER)
    assert result.returncode == 78 and "no database" in result.stderr
    database = tmp_path / "state" / "ccshortlink.db"
    assert not database.exists()
    database.parent.mkdir()
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA user_version=99")
    result = ccshortlink(config, "stats")
    assert result.returncode == 78 and "schema version 99" in result.stderr
