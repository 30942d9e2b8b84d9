"""Customers' replies as real deliver_sm from the npm SMSC to the real daemon: matched as
typed, answered once, recorded for `trace` and `stats`; opt-out and opt-in change what a
later call gets."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from tests.support.daemon import (
    Peers,
    RunningDaemon,
    answered_call,
    assert_no_number_or_secret,
    ccshortlink,
    start_peers,
)
from tests.support.smsc_peer import SmscFactory

SIGNATURES = {"zh-CN": "【云客服】", "en": "[CloudCS]"}
WEB = {"company": "云客服", "hotline": "4008123123"}


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "state" / "ccshortlink.db") as db:
        return db.execute(sql).fetchall()


async def replied(peers: Peers, daemon: RunningDaemon, number: str, text: str) -> None:
    """The customer's SMS reaches the daemon, which stores it before it answers deliver_sm."""
    before = len(peers.smsc.mo_answered(number))
    await peers.smsc.reply(number, text)
    await peers.smsc.wait_for(lambda: len(peers.smsc.mo_answered(number)) > before, timeout=20)
    assert peers.smsc.mo_answered(number)[-1]["status"] == 0


async def test_replies_as_people_type_them(tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, [])
    config = peers.config(tmp_path, sms={"signature": SIGNATURES}, web=WEB)
    daemon = await RunningDaemon.start(config)
    opt_outs = {"8613800138001": " Td。", "8613800138002": "td!", "8613800138003": "退订 ",
                "8613800138004": "ＴＤ", "8613800138005": "Stop."}
    sentence, helped = "8613800138006", "8613800138007"
    try:
        await daemon.wait_event("daemon_ready")
        for number, text in opt_outs.items():
            await replied(peers, daemon, number, text)
        await replied(peers, daemon, sentence, "please do not stop calling me, 退订 is wrong")
        await replied(peers, daemon, helped, "帮助")
        await peers.smsc.wait_for(lambda: len(peers.smsc.messages()) == 6, timeout=20)
        await asyncio.sleep(0.5)  # an answer to the sentence would have come by now
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]

    assert sorted(n for (n,) in rows(tmp_path, "SELECT customer_number FROM opt_outs")) == [
        "+" + n for n in opt_outs]
    for number in opt_outs:  # one confirmation each, signed, no link, one UCS-2 part
        [confirmation] = [m for m in peers.smsc.messages() if m.destination == number]
        assert confirmation.text.startswith("【云客服】您已退订云客服短信")
        assert "http" not in confirmation.text and confirmation.total == 1
    assert peers.sms_to(sentence) == []
    [help_text] = peers.sms_to(helped)
    assert help_text == "【云客服】云客服客服热线：4008123123。回TD退订"
    assert rows(tmp_path, "SELECT kind, text FROM replies WHERE customer_number = "
                f"'+{sentence}'") == [("other", "please do not stop calling me, 退订 is wrong")]
    assert_no_number_or_secret(daemon.log, ["+" + n for n in [*opt_outs, sentence, helped]])
    assert "sms_reply_ignored" in daemon.log

    trace = ccshortlink(config, "trace", sentence)
    assert trace.returncode == 0, trace.stderr
    assert "“please do not stop calling me, 退订 is wrong” → other text" in trace.stdout
    trace = ccshortlink(config, "trace", "13800138001")
    assert "“ Td。” → opt-out, answered (SMS #" in trace.stdout
    assert "(opt out confirmation)" in trace.stdout and "【云客服】您已退订" in trace.stdout
    stats = ccshortlink(config, "stats", "--json")
    today = json.loads(stats.stdout)["periods"][0]
    assert today["replies"] == {"opt_out": 5, "opt_in": 0, "help": 1, "other": 1,
                                "answered": 6}
    assert "Replies: 7 (5 opt-out, 0 opt-in, 1 help, 1 other text), 6 answered" in \
        ccshortlink(config, "stats").stdout


async def test_a_storm_of_replies_from_one_number_gets_one_answer(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, [])
    config = peers.config(tmp_path, web=WEB)
    daemon = await RunningDaemon.start(config)
    number = "8613900139000"
    try:
        await daemon.wait_event("daemon_ready")
        # an auto-responder: all at once, in several forms, answered or not
        await asyncio.gather(*(peers.smsc.reply(number, text) for text in
                               ["HELP", "help", "客服", "TD", "帮助", "START", "HELP!"]))
        await peers.smsc.wait_for(lambda: len(peers.smsc.mo_answered(number)) == 7, timeout=20)
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(number)), timeout=20)
        await asyncio.sleep(1.0)  # a second answer would have come by now
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    assert len(peers.sms_to(number)) == 1
    answers = rows(tmp_path, "SELECT sms_id IS NOT NULL, answer FROM replies ORDER BY id")
    assert len(answers) == 7
    assert sorted(answers) == [(0, "answered within the hour already")] * 6 + [(1, "")]
    trace = ccshortlink(config, "trace", number).stdout
    assert trace.count("not answered: answered within the hour already") == 6


async def test_opt_out_then_a_call_gets_no_card_and_opt_in_brings_them_back(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, [])
    config = peers.config(tmp_path, sms={"signature": "【云客服】"}, web=WEB,
                          policy={"resend_window_hours": 0})
    daemon = await RunningDaemon.start(config)
    customer, other = "8613700137000", "8613600136000"
    try:
        await daemon.wait_event("daemon_ready")
        await replied(peers, daemon, customer, "退订")
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(customer)), timeout=20)
        await peers.deliver(answered_call(1, "+" + customer))
        skipped = await daemon.wait_event("card_skipped")
        assert skipped["reason"] == "number opted out (on the do-not-send list)"

        await replied(peers, daemon, customer, "订阅。")  # within the hour: no second SMS
        await peers.deliver(answered_call(2, "+" + customer))
        await peers.smsc.wait_for(lambda: len(peers.sms_to(customer)) == 2, timeout=20)

        # an operator's opt-out, then the customer's START: confirmed at once, cards again
        assert ccshortlink(config, "opt-out", "add", other).returncode == 0
        await replied(peers, daemon, other, "start")
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(other)), timeout=20)
        await peers.deliver(answered_call(3, "+" + other))
        await peers.smsc.wait_for(lambda: len(peers.sms_to(other)) == 2, timeout=20)
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    confirmation, card = peers.sms_to(customer)
    assert confirmation.startswith("【云客服】您已退订") and "王小梅" in card
    opted_in, card = peers.sms_to(other)
    assert opted_in == "【云客服】您已恢复接收云客服短信。回TD退订"
    assert card.startswith("【云客服】王小梅") and card.endswith("回TD退订")
    assert rows(tmp_path, "SELECT customer_number FROM opt_outs") == []
    assert rows(tmp_path, "SELECT outcome FROM decisions ORDER BY id") == [
        ("skipped",), ("sent",), ("sent",)]


async def test_an_opt_out_cancels_the_card_held_by_quiet_hours(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    """A card waits for morning; the customer texts TD in the night (or the operator adds the
    number): the confirmation goes at once and the waiting card never does."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    quiet = {"quiet_start": f"{(local - timedelta(hours=1)):%H:%M}",
             "quiet_end": f"{(local + timedelta(hours=2)):%H:%M}"}
    peers = await start_peers(smsc_factory, [])
    config = peers.config(tmp_path, sms={"signature": "【云客服】"}, web=WEB, policy=quiet)
    daemon = await RunningDaemon.start(config)
    customer, other = "8613700137001", "8613600136001"
    try:
        await daemon.wait_event("daemon_ready")
        await peers.deliver(answered_call(1, "+" + customer) + answered_call(2, "+" + other))
        await daemon.wait_event("card_queued", count=2)
        await replied(peers, daemon, customer, "td")
        await peers.smsc.wait_for(lambda: bool(peers.sms_to(customer)), timeout=20)
        assert ccshortlink(config, "opt-out", "add", other).returncode == 0
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]
    [confirmation] = peers.sms_to(customer)
    assert confirmation.startswith("【云客服】您已退订") and peers.sms_to(other) == []
    assert rows(tmp_path, "SELECT destination, kind, status, error FROM sms ORDER BY id") == [
        ("+" + customer, "card", "expired", "number opted out"),
        ("+" + other, "card", "expired", "number opted out"),
        ("+" + customer, "opt_out_confirmation", "submitted", "")]
    story = ccshortlink(config, "trace", "+" + customer)
    assert "not sent: number opted out (sms reply)" in story.stdout, story.stdout
    today = json.loads(ccshortlink(config, "stats", "--json").stdout)["periods"][0]["all"]
    assert today["sms_failed"] == 0  # cancelled on purpose is not a failed SMS
