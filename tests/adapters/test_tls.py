"""AMI and SMPP over TLS against real peers with a certificate the test makes: the right
certificate connects; a wrong server name, a CA nobody trusts or a peer speaking in clear is
refused before a login or bind is written, logged with why, and retried."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ccshortlink.ami.client import AmiClient
from ccshortlink.config.tls import TlsConfig
from ccshortlink.core.sms import encode_sms
from ccshortlink.ops.logs import get_logger
from tests.support.amikit import (
    SECRET,
    CountingRandom,
    Recorder,
    ami_config,
    eventually,
    expected_events,
    frames_of,
    named,
    running,
    serving,
)
from tests.support.certs import Certs  # certs: the certs plugin
from tests.support.smppkit import PASSWORD, Connect, number
from tests.support.smppkit import eventually as smpp_eventually
from tests.support.smsc_peer import SmscFactory  # smsc_factory: the smsc_peer plugin

CALL = "01-sip-answered-customer-hangup.txt"


def refused(certs: Certs) -> dict[str, tuple[TlsConfig, str]]:
    """Each way a certificate is refused, and the words the reason must carry."""
    return {
        "wrong server name": (TlsConfig(server_name="pbx.example.com", ca_file=certs.ca),
                              "check tls_server_name"),
        "untrusted CA": (TlsConfig(server_name="localhost", ca_file=certs.stranger_ca),
                         "check tls_ca_file"),
        "system CAs only": (TlsConfig(server_name="localhost"), "check tls_ca_file"),
    }


REFUSALS = ["wrong server name", "untrusted CA", "system CAs only"]


# ---- AMI ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("server_name", ["localhost", "127.0.0.1"])
async def test_ami_over_tls_logs_in_and_delivers_the_events(certs: Certs,
                                                            server_name: str) -> None:
    frames = frames_of(CALL)
    recorder = Recorder()
    tls = TlsConfig(server_name=server_name, ca_file=certs.ca)
    async with serving(frames, tls=certs.server_context()) as (peer, port):
        with capture_logs() as logs:
            async with running(AmiClient(ami_config(port, tls=tls), recorder, get_logger())):
                await peer.wait_done()
                await recorder.wait_for(len(expected_events(frames)))
        assert recorder.events == expected_events(frames)
        assert peer.logins == 1
    [connected] = named(logs, "ami_connected")
    assert connected["tls"] in ("TLSv1.2", "TLSv1.3") and connected["tls_verified"] is True
    assert SECRET not in repr(logs)


@pytest.mark.parametrize("case", REFUSALS)
async def test_ami_refuses_a_certificate_it_cannot_trust_and_keeps_retrying(
        certs: Certs, case: str) -> None:
    tls, hint = refused(certs)[case]
    rng = CountingRandom()
    async with serving(frames_of(CALL), tls=certs.server_context()) as (peer, port):
        with capture_logs() as logs:
            client = AmiClient(ami_config(port, tls=tls), Recorder(), get_logger(), rng=rng)
            async with running(client) as task:
                await eventually(lambda: rng.retries >= 3)  # backs off and tries again
                assert not task.done() and not client.connected
        # the handshake failed before the peer's AMI ever saw the client: no login, no secret
        assert (peer.connections, peer.actions) == (0, [])
    [down] = named(logs, "ami_disconnected")  # once per outage, not once per attempt
    assert down["reason"].startswith("TLS certificate refused") and hint in down["reason"]
    assert not any(entry.get("exc_info") for entry in logs)  # a reason, not a traceback


async def test_ami_over_tls_to_a_plain_port_sends_no_login(certs: Certs) -> None:
    """Someone answering in clear where TLS is expected never gets the username or secret."""
    tls = TlsConfig(server_name="localhost", ca_file=certs.ca)
    async with serving(frames_of(CALL)) as (peer, port):  # plain TCP: the banner in clear
        with capture_logs() as logs:
            client = AmiClient(ami_config(port, tls=tls), Recorder(), get_logger())
            async with running(client):
                await eventually(lambda: bool(named(logs, "ami_disconnected")))
                assert not client.connected
        assert peer.connections >= 1 and peer.actions == [] and peer.logins == 0
    reason = named(logs, "ami_disconnected")[0]["reason"]
    assert reason.startswith("TLS handshake failed") and "plain TCP" in reason


# ---- SMPP --------------------------------------------------------------------------------------

async def test_smpp_over_tls_binds_and_the_sms_arrives(certs: Certs, smsc_factory: SmscFactory,
                                                       connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD, tls_key=certs.key, tls_cert=certs.cert)
    assert smsc.listening_events()[-1]["tls"] is True
    harness = await connect(smsc.port, tls=TlsConfig(server_name="localhost", ca_file=certs.ca,
                                                     min_version="1.2"))
    assert harness.client.bound
    [message_id] = await harness.client.submit(number(7), encode_sms("Your agent: Alice", 1))
    await smsc.wait_accepted(1)
    assert smsc.texts() == ["Your agent: Alice"]
    assert smsc.accepted()[0]["message_id"] == message_id
    [bound] = harness.logged("smpp_bound")
    assert bound["tls"] in ("TLSv1.2", "TLSv1.3") and bound["tls_verified"] is True
    assert smsc.named("tls_error") == []


async def test_smpp_over_tls_keeps_up_with_a_burst(certs: Certs, smsc_factory: SmscFactory,
                                                   connect: Connect) -> None:
    """Many answers in few TLS records: none is left unread in the TLS layer (a stall)."""
    smsc = await smsc_factory(password=PASSWORD, tls_key=certs.key, tls_cert=certs.cert,
                              receipts=True)
    harness = await connect(smsc.port, tls=TlsConfig(server_name="127.0.0.1", ca_file=certs.ca),
                            window=50)
    texts = [f"card {i}" for i in range(300)]
    await asyncio.gather(*(harness.client.submit(number(i), encode_sms(text, 1))
                           for i, text in enumerate(texts)))
    await smsc.wait_accepted(len(texts))
    assert sorted(smsc.texts()) == sorted(texts)
    await smpp_eventually(lambda: len(harness.receipts) == len(texts))


async def test_smpp_over_tls_stops_at_once_while_the_bind_is_unanswered(
        certs: Certs, smsc_factory: SmscFactory, connect: Connect) -> None:
    """A TLS socket turns readable for a session ticket, with no SMPP data behind it: reading
    it must not wait for the SMSC's next bytes, or a stop waits for the bind's answer."""
    smsc = await smsc_factory(password=PASSWORD, tls_key=certs.key, tls_cert=certs.cert,
                              bind_delay_ms=6000)
    harness = await connect(smsc.port, start=False, response_timeout=8.0,
                            tls=TlsConfig(server_name="localhost", ca_file=certs.ca))
    starting = asyncio.create_task(harness.client.start())
    await smsc.wait_events("bind")
    await asyncio.sleep(0.3)  # the tickets have arrived
    loop = asyncio.get_running_loop()
    began = loop.time()
    await harness.client.close(timeout=0.5)
    assert loop.time() - began < 2.0
    await asyncio.wait_for(starting, 1.0)
    assert not harness.client.bound


@pytest.mark.parametrize("case", REFUSALS)
async def test_smpp_refuses_a_certificate_it_cannot_trust_and_keeps_retrying(
        certs: Certs, smsc_factory: SmscFactory, connect: Connect, case: str) -> None:
    tls, hint = refused(certs)[case]
    smsc = await smsc_factory(password=PASSWORD, tls_key=certs.key, tls_cert=certs.cert)
    harness = await connect(smsc.port, tls=tls)  # start() returns after the first attempt
    await smsc.wait_events("tls_error", count=3)  # backs off and tries again
    assert not harness.client.bound
    # every attempt ended in the handshake: the SMSC never saw a bind, so never the password
    assert smsc.binds() == [] and smsc.named("submit_sm") == []
    [down] = harness.logged("smpp_disconnected")  # once per outage, not once per attempt
    assert "TLS certificate refused" in down["reason"] and hint in down["reason"]
    assert harness.logged("smpp_thread_failed") == []


async def test_smpp_over_tls_to_a_plain_smsc_sends_no_bind(certs: Certs,
                                                           smsc_factory: SmscFactory,
                                                           connect: Connect) -> None:
    smsc = await smsc_factory(password=PASSWORD)  # plain TCP
    harness = await connect(smsc.port, tls=TlsConfig(server_name="localhost", ca_file=certs.ca),
                            response_timeout=1.0)
    await smpp_eventually(lambda: bool(harness.logged("smpp_disconnected")))
    assert not harness.client.bound
    assert smsc.binds() == []
    [down] = harness.logged("smpp_disconnected")
    # the SMSC waits for a PDU, the client for the handshake: it gives up and says why
    assert "TLS handshake failed" in down["reason"] and "plain TCP" in down["reason"], down


def test_a_missing_ca_file_at_connect_time_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    from ccshortlink.ops.tls import TlsSetupError, client_context, describe_tls_failure

    with pytest.raises(TlsSetupError) as info:
        client_context(TlsConfig(server_name="localhost", ca_file=tmp_path / "gone.pem"))
    reason = describe_tls_failure(info.value)
    assert reason is not None and "gone.pem" in reason and "unusable" in reason
