"""`ccshortlink trace` through the real CLI, on a database filled by the real sending path."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccshortlink.config.agents import load_agents
from ccshortlink.core.calls import CallEnded
from ccshortlink.app.sending import CardOutcome, CardService
from ccshortlink.config.settings import Config, load_config
from ccshortlink.core.links import SmsTemplates
from ccshortlink.ops.logs import get_logger
from ccshortlink.app.outbox import Outbox
from ccshortlink.core.policy import day_start
from ccshortlink.core.sms import EncodedSms
from ccshortlink.smpp.client import SubmitRejected
from ccshortlink.store import Store

from tests.conftest import write_config

CUSTOMER = "+8613800138000"
OTHER_CUSTOMER = "+8613912345678"
ZONE = "Asia/Shanghai"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedGateway:
    """An SMSC stand-in: answers each submit with message ids, or raises the next scripted error."""

    def __init__(self, *errors: BaseException, prefix: str = "m") -> None:
        self.errors = list(errors)
        self.prefix = prefix  # message ids must differ between gateways on one database
        self.submitted: list[str] = []

    async def submit(self, destination: str, sms: EncodedSms) -> list[str]:
        self.submitted.append(destination)
        if self.errors:
            raise self.errors.pop(0)
        return [f"{self.prefix}{len(self.submitted)}-{i}" for i in range(len(sms.parts))]


@dataclass
class Desk:
    """The real sending path on one SQLite file, with a clock the test moves."""

    config: Config
    config_path: Path
    store: Store
    cards: CardService
    clock: Clock

    async def call(self, linkedid: str, extension: str, number: str, talk: float) -> CardOutcome:
        return await self.cards.handle(CallEnded(linkedid, extension, number, talk_seconds=talk))

    async def send_due(self, gateway: ScriptedGateway) -> None:
        """Run the outbox until nothing due is left to submit."""
        outbox = Outbox(store=self.store, gateway=gateway, clock=self.clock, log=get_logger(),
                        max_attempts=5, concurrency=4)
        stop = asyncio.Event()
        task = asyncio.create_task(outbox.run(stop))
        for _ in range(500):
            await asyncio.sleep(0.01)
            due = await self.store.next_due_at()
            counts = await self.store.sms_status_counts()
            if (due is None or due > self.clock()) and not counts.get("submitting"):
                break
        stop.set()
        await task


# The stories' SMS is two UCS-2 parts, so each part's message id and receipt is in them: the
# longer text the default zh-CN template had before it was shortened to fit one part.
TWO_PART_TEMPLATE = ("您好，刚才为您服务的是{{ agent.name }}（工号{{ agent.id }}）。"
                     "下次可直接联系TA：{{ url }} 回TD退订")


async def open_desk(folder: Path, start: float, **sections: dict[str, object]) -> Desk:
    sections.setdefault("sms", {"template": TWO_PART_TEMPLATE})
    config_path = write_config(folder, **sections)
    config = load_config(config_path)
    agents = load_agents(config.agents_file)
    templates = SmsTemplates(config.sms.templates, config.sms.default_language)
    clock = Clock(start)
    store = await Store.open(config.database_path)
    cards = CardService(store=store, config=config, agents=lambda: agents,
                        templates=lambda: templates, clock=clock, log=get_logger())
    return Desk(config, config_path, store, cards, clock)


def noon_days_ago(days: int) -> float:
    return day_start(time.time() - days * 86400, ZONE) + 12 * 3600


async def write_story(folder: Path) -> tuple[Desk, dict[str, str]]:
    """One customer's two days with two agents, and another customer's call beside it."""
    desk = await open_desk(folder, noon_days_ago(2),
                           policy={"min_talk_seconds": 5, "quiet_start": "21:00",
                                   "quiet_end": "08:00", "timezone": ZONE})
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


def ccshortlink(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccshortlink", *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
async def story(tmp_path: Path) -> Story:
    desk, codes = await write_story(tmp_path)
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
