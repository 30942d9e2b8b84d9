"""The daemon as a process with AMI and SMPP over TLS: a call's card goes out; a certificate it
cannot trust keeps that link down, said once with why, retried, and the daemon keeps running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.certs import Certs  # certs: the certs plugin
from tests.support.daemon import (
    Peers,
    RunningDaemon,
    answered_call,
    assert_no_number_or_secret,
    start_peers,
)
from tests.support.smsc_peer import SmscFactory

CUSTOMER = "+8613800138041"


async def tls_peers(smsc_factory: SmscFactory, certs: Certs, frames: list[bytes]) -> Peers:
    """The replay peer and the npm SMSC, both answering only over TLS."""
    return await start_peers(smsc_factory, frames, ami_tls=certs.server_context(),
                             tls_key=certs.key, tls_cert=certs.cert)


async def test_a_call_over_tls_to_both_peers_gets_its_card(
        tmp_path: Path, smsc_factory: SmscFactory, certs: Certs) -> None:
    peers = await tls_peers(smsc_factory, certs, answered_call(1, CUSTOMER))
    # the CA file relative to the config file, as an admin would write it
    (tmp_path / "ca.pem").write_bytes(certs.ca.read_bytes())
    config = peers.config(
        tmp_path,
        ami={"port": peers.ami_port, "reconnect_max": 0.5, "tls": True, "tls_ca_file": "ca.pem",
             "tls_server_name": "localhost"},
        smpp={"port": peers.smsc.port, "tls": True, "tls_ca_file": "ca.pem",
              "tls_min_version": "1.2"})
    daemon = await RunningDaemon.start(config)
    try:
        await daemon.wait_event("daemon_ready")
        await peers.smsc.wait_for(lambda: len(peers.sms_to(CUSTOMER)) == 1)
        [text] = peers.sms_to(CUSTOMER)
        assert "https://cs.example.com/" in text
        ami = await daemon.wait_event("ami_connected")
        smpp = await daemon.wait_event("smpp_bound")
        assert ami["tls"].startswith("TLSv1.") and ami["tls_verified"] is True
        assert smpp["tls"].startswith("TLSv1.") and smpp["tls_verified"] is True
    finally:
        assert await daemon.stop() == 0
        await peers.ami.stop()
    assert_no_number_or_secret(daemon.log, [CUSTOMER])


async def test_an_smsc_with_the_wrong_name_is_refused_and_retried_while_the_daemon_runs(
        tmp_path: Path, smsc_factory: SmscFactory, certs: Certs) -> None:
    peers = await tls_peers(smsc_factory, certs, answered_call(1, CUSTOMER))
    tls = {"tls": True, "tls_ca_file": str(certs.ca)}
    config = peers.config(
        tmp_path, ami={"port": peers.ami_port, **tls},
        smpp={"port": peers.smsc.port, "tls_server_name": "smsc.example.net",
              "reconnect_max": 0.2, **tls})
    daemon = await RunningDaemon.start(config)
    try:
        await daemon.wait_event("ami_connected")  # the PBX link is fine
        await peers.smsc.wait_events("tls_error", count=3, timeout=20)  # retried, with backoff
        down = await daemon.wait_event("smpp_disconnected")
        assert "TLS certificate refused" in down["reason"]
        assert "smsc.example.net" in down["reason"] and "tls_server_name" in down["reason"]
        await asyncio.sleep(0.5)
        assert daemon.process.returncode is None  # still running, still trying
        assert len(daemon.named("smpp_disconnected")) == 1  # said once per outage
        assert daemon.named("daemon_ready") == []  # not ready without the SMSC
        # nothing went out in clear: the SMSC never saw a bind, a password or a message
        assert peers.smsc.binds() == [] and peers.smsc.named("submit_sm") == []
        assert "Traceback" not in daemon.log
    finally:
        assert await daemon.stop() == 0
        await peers.ami.stop()
    assert_no_number_or_secret(daemon.log, [CUSTOMER])
