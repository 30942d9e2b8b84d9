"""SmppClient against a real SMSC process (tests/smsc/server.js): submits, retries, window."""

from __future__ import annotations

import asyncio

import pytest

from ccshortlink.core.sms import DATA_CODING_GSM, DATA_CODING_UCS2, ESM_CLASS_UDHI, encode_sms
from ccshortlink.smpp.client import SmppAuthError, SmppClosed, SubmitRejected
from tests.support.smppkit import (
    CHINESE,
    ENGLISH_LONG,
    PASSWORD,
    Connect,
    eventually,
    free_port,
    number,
)
from tests.support.smsc_peer import Smsc, SmscFactory  # smsc_factory: the smsc_peer plugin


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
