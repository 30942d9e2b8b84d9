"""SmppClient against a real SMSC process: receipts, MO, a hung or silent link, closing."""

from __future__ import annotations

import asyncio

import pytest

from ccshortlink.core.sms import encode_sms
from ccshortlink.smpp.client import MobileOriginated, SmppClosed, parse_receipt
from tests.support.smppkit import CHINESE, PASSWORD, Connect, eventually, number
from tests.support.smsc_peer import SmscFactory  # smsc_factory: the smsc_peer plugin


async def test_receipts_with_vendor_tlv_reach_the_handler_and_keep_the_link(
        smsc_factory: SmscFactory, connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, receipts=True, receipt_tlv=True)
    harness = await connect(smsc.port)
    ids = await harness.client.submit(number(1), encode_sms(CHINESE, 7))
    await smsc.wait_for(lambda: len(smsc.named("deliver_sm_resp")) == 2)

    # The receipt text carries the id in decimal; the TLV (hex, like submit_sm_resp) wins.
    assert sorted(r.message_id for r in harness.receipts) == sorted(ids)
    assert {r.state for r in harness.receipts} == {"DELIVRD"}
    assert {r.error_code for r in harness.receipts} == {"000"}
    assert [e["status"] for e in smsc.named("deliver_sm_resp")] == [0, 0]
    await harness.client.submit(number(2), encode_sms("still bound", 8))
    assert len(smsc.binds()) == 1 and not smsc.named("close")


async def test_receipt_without_tlv_is_read_from_its_text(smsc_factory: SmscFactory,
                                                         connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, receipts=True, receipt_stat="UNDELIV")
    harness = await connect(smsc.port)
    ids = await harness.client.submit(number(1), encode_sms("Your agent: https://x.example/a", 1))
    await smsc.wait_for(lambda: len(harness.receipts) == 1)
    receipt = harness.receipts[0]
    assert (receipt.message_id, receipt.state) == (ids[0], "UNDELIV")
    assert receipt.text == "Your agent: https://"


@pytest.mark.parametrize("body, tlv_id, tlv_state, expected", [
    ("id:1234567 sub:001 dlvrd:001 submit date:2406011200 done date:2406011201 stat:UNDELIV "
     "err:034 text:Your agent id:9 stat:X", "", None,
     ("1234567", "UNDELIV", "034", "Your agent id:9 stat:X")),
    ("ID:ab12 SUB:001 DLVRD:001 STAT:DELIVERED ERR:000 TEXT:hi", "", None,
     ("ab12", "DELIVRD", "000", "hi")),
    ("id:3054198 stat:DELIVRD err:000 text:", "2e9a76", 2, ("2e9a76", "DELIVRD", "000", "")),
    ("", "2e9a76", 5, ("2e9a76", "UNDELIV", "", "")),
    ("id:1 stat:SOMETHING err:1", "", None, ("1", "UNKNOWN", "1", "")),
    ("not a receipt at all", "", None, ("", "UNKNOWN", "", "")),
])
def test_receipt_parsing(body: str, tlv_id: str, tlv_state: int | None,
                         expected: tuple[str, str, str, str]) -> None:
    receipt = parse_receipt(body, tlv_id, tlv_state)
    assert (receipt.message_id, receipt.state, receipt.error_code, receipt.text) == expected


async def test_mobile_originated_opt_out_reaches_the_handler(smsc_factory: SmscFactory,
                                                             connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, mo=["8613800138000:TD", "8613900139000:退订"])
    harness = await connect(smsc.port)
    await smsc.wait_for(lambda: len(smsc.named("deliver_sm_resp")) == 2)
    assert sorted((m.source_addr, m.text) for m in harness.mobile) == [
        ("8613800138000", "TD"), ("8613900139000", "退订")]
    assert {m.destination_addr for m in harness.mobile} == {"10690000"}
    assert [e["status"] for e in smsc.named("deliver_sm_resp")] == [0, 0]


async def test_deliver_sm_is_answered_only_after_the_handler_finishes(
        smsc_factory: SmscFactory, connect: Connect) -> None:
    release = asyncio.Event()

    async def slow_handler(message: MobileOriginated) -> None:
        await release.wait()

    smsc = await smsc_factory(password=PASSWORD, mo=["8613800138000:TD"])
    harness = await connect(smsc.port, on_mo=slow_handler)
    await harness.client.submit(number(1), encode_sms("the loop is not blocked", 1))
    await smsc.wait_accepted(1)
    assert not smsc.named("deliver_sm_resp")
    release.set()
    await smsc.wait_for(lambda: len(smsc.named("deliver_sm_resp")) == 1)
    assert harness.mobile[0].text == "TD"


async def test_failing_handler_answers_error_and_the_link_survives(smsc_factory: SmscFactory,
                                                                   connect: Connect) -> None:
    async def fragile(message: MobileOriginated) -> None:
        if message.text == "boom":
            raise RuntimeError("store is down")

    smsc = await smsc_factory(password=PASSWORD, mo=["8613800138000:boom", "8613800138000:TD"])
    harness = await connect(smsc.port, on_mo=fragile)
    await smsc.wait_for(lambda: len(smsc.named("deliver_sm_resp")) == 2)
    statuses = {e["text"]: e["status"] for e in smsc.named("deliver_sm_resp")}
    assert statuses == {"boom": 0x08, "TD": 0}
    await harness.client.submit(number(1), encode_sms("still alive", 1))
    assert len(smsc.binds()) == 1
    assert harness.logged("smpp_handler_failed")[0]["kind"] == "mobile_originated"


async def test_enquire_link_detects_a_hung_smsc_and_recovers(smsc_factory: SmscFactory,
                                                             connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD)
    harness = await connect(smsc.port, enquire_link_interval=0.3, response_timeout=0.6)
    await smsc.wait_for(lambda: len(smsc.named("enquire_link")) >= 1)  # keepalive when idle
    smsc.pause()
    await eventually(lambda: bool(harness.logged("smpp_disconnected")), timeout=5)
    assert "enquire_link" in harness.logged("smpp_disconnected")[0]["reason"]
    assert not harness.client.bound
    pending = asyncio.create_task(harness.client.submit(number(1), encode_sms("after hang", 1)))
    smsc.resume()
    await asyncio.wait_for(pending, 10)
    await smsc.wait_accepted(1)
    assert smsc.texts() == ["after hang"]
    assert harness.client.bound
    assert len(harness.logged("smpp_disconnected")) == 1


async def test_unanswered_submit_times_out_and_is_resent(smsc_factory: SmscFactory,
                                                         connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD)
    harness = await connect(smsc.port, response_timeout=0.5, window=3)
    smsc.pause()
    pending = asyncio.create_task(harness.client.submit(number(1), encode_sms("hello", 1)))
    await eventually(lambda: bool(harness.logged("smpp_disconnected")), timeout=5)
    disconnected = harness.logged("smpp_disconnected")[0]
    assert "submit_sm_resp" in disconnected["reason"] and disconnected["unacknowledged"] == 1
    smsc.resume()
    ids = await asyncio.wait_for(pending, 10)
    await smsc.wait_for(lambda: ids[0] in {e["message_id"] for e in smsc.accepted()})
    # The hung SMSC may still take the first copy once it wakes: at most one duplicate.
    assert 1 <= len(smsc.accepted()) <= 2
    assert {sms.text for sms in smsc.messages()} == {"hello"}


async def test_close_unbinds_and_fails_what_cannot_finish(smsc_factory: SmscFactory,
                                                          connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD)
    harness = await connect(smsc.port, response_timeout=5.0)
    await harness.client.submit(number(1), encode_sms("first", 1))
    smsc.pause()
    stuck = asyncio.create_task(harness.client.submit(number(2), encode_sms("stuck", 2)))
    await asyncio.sleep(0.1)  # let it reach the socket
    loop = asyncio.get_running_loop()
    started = loop.time()
    await harness.client.close(timeout=0.3)
    assert loop.time() - started < 3
    with pytest.raises(SmppClosed):
        await stuck
    with pytest.raises(SmppClosed):
        await harness.client.submit(number(3), encode_sms("too late", 3))
    smsc.resume()
    await smsc.wait_for(lambda: bool(smsc.named("unbind")))


async def test_close_waits_for_in_flight_submits(smsc_factory: SmscFactory,
                                                 connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, delay_ms=200)
    harness = await connect(smsc.port)
    pending = [asyncio.create_task(harness.client.submit(number(i), encode_sms("bye", i)))
               for i in range(3)]
    await asyncio.sleep(0.05)
    await harness.client.close(timeout=5.0)
    assert [len(await task) for task in pending] == [1, 1, 1]
    await smsc.wait_for(lambda: bool(smsc.named("unbind")))
    assert not harness.client.bound
