"""Who gets a card, through the real daemon: recorded calls in, SMS at the npm SMSC, `trace` out.

Each rule meets a recorded call it lets through and one it holds back; the reason `trace`
gives for a held-back card names the rule as the config spells it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ccshortlink.peers.amipeer import read_transcript, rewrite_call
from tests.support.daemon import (
    Peers,
    RunningDaemon,
    assert_no_number_or_secret,
    ccshortlink,
    start_peers,
)
from tests.support.smsc_peer import SmscFactory
from tests.support.transcripts import FIXTURES

HOTLINE = "400-820-8820"
DECISIONS = ("card_queued", "card_skipped", "missed_call_sms_queued")


def recorded(name: str, index: int, customer: str | None = None, **rewrite: str) -> list[bytes]:
    """A fresh call (ids of its own: index) from one of the recordings in tests/fixtures."""
    _, frames = read_transcript(FIXTURES / name)
    return rewrite_call(frames, index=index, customer_number=customer, **rewrite)


def in_queue(queue: str, frames: list[bytes]) -> list[bytes]:
    """The same call, through another queue: its events name `queue` instead of support."""
    return [f.replace(b"Queue: support", b"Queue: " + queue.encode()) for f in frames]


def linkedid(index: int) -> str:
    """What rewrite_call makes of a recording's first Uniqueid (its Linkedid) for `index`."""
    return f"{1_800_000_000 + index}.0"


def trace(config: Path, query: str) -> list[dict[str, Any]]:
    done = ccshortlink(config, "trace", query, "--json")
    assert done.returncode == 0, done.stderr
    return [e for e in json.loads(done.stdout)["events"] if e["kind"] == "decision"]


def reasons(config: Path, query: str) -> list[tuple[str, str, str]]:
    return [(d["trigger"], d["outcome"], d["reason"]) for d in trace(config, query)]


async def run_calls(tmp_path: Path, smsc_factory: SmscFactory, calls: list[list[bytes]],
                    decisions: int, sms: int, **sections: dict[str, object]
                    ) -> tuple[Peers, Path, RunningDaemon]:
    """The daemon, given these calls by its AMI peer, until it decided them and sent `sms`."""
    peers = await start_peers(smsc_factory, [frame for call in calls for frame in call])
    config = peers.config(tmp_path, **sections)
    agents = tmp_path / "agents.yaml"  # CS1002 sends only when they ask (*55)
    agents.write_text(agents.read_text(encoding="utf-8").replace(
        '    extensions: ["1002"]\n', '    extensions: ["1002"]\n    auto_send: false\n'),
        encoding="utf-8")
    daemon = await RunningDaemon.start(config)
    try:
        await daemon.wait_for(lambda: sum(len(daemon.named(e)) for e in DECISIONS) >= decisions)
        await peers.smsc.wait_for(
            lambda: sum(m.complete for m in peers.smsc.messages()) >= sms, timeout=20)
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    return peers, config, daemon


async def test_direction_queue_exclude_auto_send_and_the_missed_call_sms(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    inbound, outbound, excluded, quiet_agent, abandoned, rang_out = (
        f"+86138001381{i:02d}" for i in range(6))
    calls = [
        recorded("01-sip-answered-customer-hangup.txt", 0, inbound),
        recorded("09-sip-agent-calls-customer.txt", 1, outbound),
        recorded("04-queue-sip-members-answered.txt", 2, excluded),
        recorded("01-sip-answered-customer-hangup.txt", 3, quiet_agent, agent_extension="1002"),
        # CS1002 (auto_send: false) dials *55 after that call: their card goes all the same
        recorded("05-userevent-sendcard.txt", 4, agent_extension="1002"),
        # in the sales queue: support is excluded, and a caller who gives up in an excluded
        # queue gets no missed-call SMS either (tests/core/test_callrules.py)
        in_queue("sales", recorded("07-queue-sip-caller-abandons.txt", 5, abandoned)),
        recorded("03-sip-ring-no-answer-abandon.txt", 6, rang_out),
    ]
    peers, config, daemon = await run_calls(
        tmp_path, smsc_factory, calls, decisions=7, sms=3,
        policy={"directions": ["inbound"], "queues_exclude": ["support"],
                "missed_call_sms": True},
        web={"hotline": HOTLINE})

    [card] = peers.sms_to(inbound)
    assert "CS1001" in card and "https://cs.example.com/" in card
    [asked] = peers.sms_to(quiet_agent)
    assert "CS1002" in asked and "Daniel Chen" in asked
    [missed] = [m for m in peers.smsc.messages() if m.destination.endswith(abandoned[1:])]
    assert missed.total == 1 and HOTLINE in missed.text, missed.text
    assert "https://" not in missed.text and "CS100" not in missed.text  # no agent, no link
    assert missed.text.startswith("抱歉") and missed.text.endswith("回TD退订")
    for number in (outbound, excluded, rang_out):
        assert peers.sms_to(number) == [], number

    assert reasons(config, outbound) == [
        ("hangup", "skipped", "direction outbound not in [policy] directions")]
    assert reasons(config, excluded) == [
        ("hangup", "skipped", "queue support in [policy] queues_exclude")]
    assert reasons(config, quiet_agent) == [
        ("hangup", "skipped", "agent CS1002 has auto_send: false (the agent sends with *55)"),
        ("feature_code", "sent", "")]
    [decision] = trace(config, abandoned)
    assert (decision["trigger"], decision["outcome"], decision["agent"]) == \
        ("not_answered", "sent", "")
    assert decision["reason"] == "missed call in queue sales (abandoned)"
    assert decision["code"] == "" and decision["sms_id"] is not None
    assert reasons(config, rang_out) == [
        ("not_answered", "skipped", "no agent answered (rang out, abandoned or sent elsewhere)")]
    assert len(daemon.named("missed_call_sms_queued")) == 1
    assert_no_number_or_secret(daemon.log, [inbound, outbound, excluded, quiet_agent,
                                            abandoned, rang_out])

    # the missed-call SMS is in the customer's trace, text and all, and `stats` counts it
    done = ccshortlink(config, "trace", abandoned, "--json")
    [sms] = json.loads(done.stdout)["sms"]
    assert sms["code"] == "" and sms["text"] == missed.text and sms["parts"] == 1
    stats = ccshortlink(config, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    today = json.loads(stats.stdout)["periods"][0]
    # calls no agent answered count under no agent (""), as before; now with their SMS
    assert (today["all"]["sms_sent"], today["agents"][""]["sms_sent"]) == (3, 1)


async def test_outbound_queue_include_internal_and_no_missed_call_sms_by_default(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    outbound, in_queue, direct, abandoned = (f"+86139001392{i:02d}" for i in range(4))
    calls = [
        recorded("09-sip-agent-calls-customer.txt", 10, outbound),
        recorded("04-queue-sip-members-answered.txt", 11, in_queue),
        recorded("01-sip-answered-customer-hangup.txt", 12, direct),
        recorded("07-queue-sip-caller-abandons.txt", 13, abandoned),
        # 1001 calls extension 2001, a desk that is no agent's: the other end is no customer
        recorded("08-sip-agent-calls-agent.txt", 14, original_agent="1002",
                 agent_extension="2001"),
    ]
    peers, config, _ = await run_calls(tmp_path, smsc_factory, calls, decisions=5, sms=2,
                                       # replayed at once: the events give no talk time
                                       policy={"queues_include": ["support"],
                                               "min_talk_seconds": 0},
                                       web={"hotline": HOTLINE})

    assert ["CS1001" in text for text in peers.sms_to(outbound)] == [True]
    assert ["CS1001" in text for text in peers.sms_to(in_queue)] == [True]
    assert peers.sms_to(direct) == [] and peers.sms_to(abandoned) == []
    assert reasons(config, outbound) == [("hangup", "sent", "")]
    assert reasons(config, direct) == [
        ("hangup", "skipped", "inbound call through no queue, and [policy] queues_include is set")]
    assert reasons(config, abandoned) == [
        ("not_answered", "skipped", "no agent answered (rang out, abandoned or sent elsewhere)")]
    [internal] = trace(config, linkedid(14))
    assert (internal["agent"], internal["customer_number"], internal["outcome"]) == \
        ("CS1001", "2001", "skipped")
    assert internal["reason"] == "direction internal not in [policy] directions"
