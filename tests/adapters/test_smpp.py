"""SmppClient against a real SMSC process (tests/smsc/server.js) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import pytest_asyncio
import structlog
from structlog.testing import CapturingLogger

from ccshortlink.config.settings import SmppConfig
from ccshortlink.core.sms import DATA_CODING_GSM, DATA_CODING_UCS2, ESM_CLASS_UDHI, encode_sms
from ccshortlink.smpp.client import (
    DeliveryReceipt,
    MobileOriginated,
    SmppAuthError,
    SmppClient,
    SmppClosed,
    SubmitRejected,
    parse_receipt,
)
from tests.support.smsc_peer import (  # smsc_factory comes from the smsc_peer plugin
    Smsc,
    SmscFactory,
)

PASSWORD = "pw-Zx81"  # distinctive, so a leak into any log line is easy to spot
CHINESE = ("您好，刚才为您服务的是张三（工号1001）。下次可直接联系TA：https://cc.example.com/"
           "k7Hq2mXp 回TD退订。如对本次服务有任何意见或建议，欢迎随时致电我们的客服热线。")
ENGLISH_LONG = ("Thanks for calling Example Telecom. You spoke with Alice (ID 1001) today. "
                "Reach the same agent again, any time: https://cc.example.com/k7Hq2mXp - "
                "rate the call on that page {it takes 10 seconds}. Reply STOP to opt out. €0.")


def number(i: int) -> str:
    return f"+861380013{i:04d}"


@dataclass
class Harness:
    client: SmppClient
    logs: CapturingLogger
    receipts: list[DeliveryReceipt] = field(default_factory=list)
    mobile: list[MobileOriginated] = field(default_factory=list)

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [call.kwargs for call in self.logs.calls if call.kwargs.get("event") == event]


def make_config(port: int, **overrides: Any) -> SmppConfig:
    config = SmppConfig(host="127.0.0.1", port=port, system_id="ccshortlink", password=PASSWORD,
                        source_addr="CCShort", window=10, max_per_second=1000.0,
                        enquire_link_interval=5.0, response_timeout=2.0, reconnect_max=0.5)
    return replace(config, **overrides)


Connect = Callable[..., Awaitable[Harness]]


@pytest_asyncio.fixture
async def connect() -> AsyncIterator[Connect]:
    """`await connect(port, on_mo=..., **SmppConfig overrides)` -> started Harness."""
    harnesses: list[Harness] = []

    async def factory(port: int, *, start: bool = True,
                      on_mo: Callable[[MobileOriginated], Awaitable[None]] | None = None,
                      **overrides: Any) -> Harness:
        logs = CapturingLogger()
        log = structlog.wrap_logger(
            logs, processors=[],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))

        async def on_receipt(receipt: DeliveryReceipt) -> None:
            harness.receipts.append(receipt)

        async def on_mobile_originated(message: MobileOriginated) -> None:
            if on_mo is not None:
                await on_mo(message)
            harness.mobile.append(message)

        client = SmppClient(make_config(port, **overrides), on_receipt=on_receipt,
                            on_mobile_originated=on_mobile_originated, log=log)
        harness = Harness(client, logs)
        harnesses.append(harness)
        if start:
            await client.start()
        return harness

    yield factory
    for harness in harnesses:
        await harness.client.close(timeout=1.0)
        assert PASSWORD not in repr(harness.logs.calls)


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition the SMSC cannot signal (client state); fails after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_long_gsm_and_chinese_sms_arrive_whole_with_udh(smsc_factory: SmscFactory,
                                                               connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD)
    harness = await connect(smsc.port)
    assert harness.client.bound
    gsm_ids = await harness.client.submit(number(1), encode_sms(ENGLISH_LONG, 0x0102))
    ucs2_ids = await harness.client.submit(number(2), encode_sms(CHINESE, 0x0103))

    assert len(gsm_ids) == 2 and len(ucs2_ids) == 2
    await smsc.wait_accepted(4)
    by_destination = {sms.destination: sms for sms in smsc.messages()}
    english, chinese = by_destination["8613800130001"], by_destination["8613800130002"]
    assert english.text == ENGLISH_LONG and english.data_coding == DATA_CODING_GSM
    assert chinese.text == CHINESE and chinese.data_coding == DATA_CODING_UCS2
    assert (english.reference, english.total) == (0x0102, 2) and english.complete
    assert (chinese.reference, chinese.total) == (0x0103, 2) and chinese.complete
    submits = smsc.accepted()
    assert all(e["esm_class"] & ESM_CLASS_UDHI for e in submits)
    # The npm library's own decoders agree, part by part: no character was split.
    node_decoded = {e["destination_addr"][-1]: "" for e in submits}
    for event in submits:
        node_decoded[event["destination_addr"][-1]] += event["text"]
    assert node_decoded == {"1": ENGLISH_LONG, "2": CHINESE}
    # Addressing comes from the configuration; receipts are asked for.
    assert {(e["source_addr"], e["source_addr_ton"], e["source_addr_npi"]) for e in submits} == {
        ("CCShort", 5, 0)}
    assert {(e["dest_addr_ton"], e["dest_addr_npi"], e["registered_delivery"])
            for e in submits} == {(1, 1, 1)}
    assert gsm_ids + ucs2_ids == [e["message_id"] for e in submits]
    assert [b["system_id"] for b in smsc.binds()] == ["ccshortlink"]
    assert smsc.binds()[0]["command"] == "bind_transceiver"


async def test_bad_password_raises_auth_error_quickly(smsc_factory: SmscFactory,
                                                      connect: Connect) -> None:
    smsc = await smsc_factory(password="other")
    harness = await connect(smsc.port, start=False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SmppAuthError) as refused:
        await harness.client.start()
    assert loop.time() - started < 3
    assert refused.value.status == 0x0E
    await smsc.wait_for(lambda: bool(smsc.binds()))  # its log line may trail its answer
    assert smsc.binds()[0]["ok"] is False
    assert not harness.client.bound
    with pytest.raises(SmppClosed):
        await harness.client.submit(number(1), encode_sms("hi", 1))
    assert len(smsc.binds()) == 1  # a wrong password is not retried


async def test_unreachable_smsc_at_start_is_retried_in_background(connect: Connect) -> None:
    port = free_port()
    harness = await connect(port)  # returns although nothing listens
    assert not harness.client.bound
    pending = asyncio.create_task(harness.client.submit(number(3), encode_sms("queued", 1)))
    await asyncio.sleep(0.5)  # let several reconnect attempts fail
    smsc = await Smsc.start(password=PASSWORD, port=port)
    async with smsc:
        ids = await asyncio.wait_for(pending, 10)
        await smsc.wait_accepted(1)
        assert ids == [smsc.accepted()[0]["message_id"]]
        assert smsc.texts() == ["queued"]
        assert len(harness.logged("smpp_disconnected")) == 1  # logged once, not per attempt
        assert "connect failed" in harness.logged("smpp_disconnected")[0]["reason"]
        assert len(harness.logged("smpp_bound")) == 1


async def test_throttling_is_retried_until_every_message_is_accepted(
        smsc_factory: SmscFactory, connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, throttle=6)
    harness = await connect(smsc.port, window=4)
    results = await asyncio.gather(*(
        harness.client.submit(number(i), encode_sms(f"message {i}", i)) for i in range(10)))
    await smsc.wait_accepted(10)
    assert len(smsc.named("submit_sm")) - len(smsc.accepted()) == 6
    assert sorted(sms.text for sms in smsc.messages()) == sorted(f"message {i}" for i in range(10))
    assert len(smsc.accepted()) == 10  # throttled parts are resent, never duplicated
    assert [ids[0] for ids in results] == [
        next(e["message_id"] for e in smsc.accepted() if e["destination_addr"] == number(i)[1:])
        for i in range(10)]
    assert len(harness.logged("smpp_throttled")) == 1
    assert len(smsc.binds()) == 1


async def test_queue_full_status_is_also_retried(smsc_factory: SmscFactory,
                                                 connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, throttle=2, throttle_status=0x14)
    harness = await connect(smsc.port)
    await harness.client.submit(number(1), encode_sms("after queue full", 1))
    await smsc.wait_accepted(1)
    assert smsc.texts() == ["after queue full"]


async def test_permanent_error_raises_submit_rejected(smsc_factory: SmscFactory,
                                                      connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, reject_status=0x0B)
    harness = await connect(smsc.port)
    with pytest.raises(SubmitRejected) as rejected:
        await harness.client.submit(number(1), encode_sms("to a bad number", 1))
    assert rejected.value.status == 0x0B
    await smsc.wait_events("submit_sm")
    assert len(smsc.named("submit_sm")) == 1  # not retried
    assert harness.client.bound
    assert harness.logged("smpp_submit_rejected")[0]["customer_number"] == "+86138****0001"


@pytest.mark.parametrize("before_response", [False, True])
async def test_dropped_connection_resends_unacknowledged_parts(
        smsc_factory: SmscFactory, connect: Connect, before_response: bool) -> None:
    window = 5
    smsc = await smsc_factory(password=PASSWORD, drop_after=7, drop_before_resp=before_response,
                              delay_ms=5)
    harness = await connect(smsc.port, window=window)
    results = await asyncio.wait_for(asyncio.gather(*(
        harness.client.submit(number(i), encode_sms(f"message {i}", i)) for i in range(20))), 15)
    returned = {ids[0] for ids in results}
    # The SMSC prints each submit before answering it: once every returned id is in, all are.
    await smsc.wait_for(lambda: returned <= {e["message_id"] for e in smsc.accepted()})
    assert len(smsc.named("drop")) == 1 and len(smsc.binds()) == 2
    accepted = smsc.accepted()
    destinations = {e["destination_addr"] for e in accepted}
    assert destinations == {number(i)[1:] for i in range(20)}  # every message at least once
    assert len(accepted) - 20 <= window  # duplicates bounded by the window
    if before_response:
        assert len(accepted) > 20  # the unanswered one was necessarily sent again
    # Every returned id is one the SMSC answered with.
    answered = {e["message_id"] for e in accepted if e["answered"]}
    assert returned <= answered
    assert len(harness.logged("smpp_disconnected")) == 1


async def test_smsc_restart_resumes_and_delivers_what_was_queued(smsc_factory: SmscFactory,
                                                                 connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD)
    harness = await connect(smsc.port)
    await harness.client.submit(number(1), encode_sms("before restart", 1))
    await smsc.stop()
    await eventually(lambda: not harness.client.bound)
    during = asyncio.create_task(harness.client.submit(number(2), encode_sms("during outage", 2)))
    await smsc.restart()
    await asyncio.wait_for(during, 10)
    await harness.client.submit(number(3), encode_sms("after restart", 3))
    await smsc.wait_accepted(3)
    assert smsc.texts() == ["before restart", "during outage", "after restart"]
    assert len(smsc.binds()) == 2
    disconnected = harness.logged("smpp_disconnected")
    assert len(disconnected) == 1 and "closed" in disconnected[0]["reason"]
    assert len(harness.logged("smpp_bound")) == 2


async def test_slow_responses_fill_but_never_exceed_the_window(smsc_factory: SmscFactory,
                                                               connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, delay_ms=100)
    harness = await connect(smsc.port, window=4)
    await asyncio.wait_for(asyncio.gather(*(
        harness.client.submit(number(i), encode_sms(f"slow {i}", i)) for i in range(12))), 10)
    await smsc.wait_accepted(12)
    inflight = [e["inflight"] for e in smsc.named("submit_sm")]
    assert max(inflight) == 4  # pipelined up to the window...
    assert len(smsc.accepted()) == 12 and len(smsc.binds()) == 1  # ...within response_timeout


async def test_rate_cap_spaces_submits(smsc_factory: SmscFactory, connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD)
    harness = await connect(smsc.port, max_per_second=20.0, window=10)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(harness.client.submit(number(i), encode_sms("x", i))
                           for i in range(8)))
    # 8 submits at 20/s need 7 gaps of 50 ms (a slow machine only adds); without the cap the
    # window of 10 would send them in one burst.
    assert loop.time() - started >= 7 * 0.050 * 0.95
    await smsc.wait_accepted(8)
    assert len(smsc.accepted()) == 8


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
