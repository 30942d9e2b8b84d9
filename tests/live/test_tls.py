"""AMI over TLS to a real Asterisk (`tlsenable = yes` in manager.conf, a certificate the test
makes): the daemon logs in over TLS and a direct call gives the card; a CA it does not trust
keeps it from sending the login at all."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.configfile import write_config
from tests.support.daemon import RunningDaemon
from tests.support.livekit import LiveDesk, secret_of_shipped_user

pytestmark = [pytest.mark.live,
              pytest.mark.parametrize("live", [{"ami_tls": True}], indirect=True,
                                      ids=["AMI over TLS"])]

AGENT = ("CS1001", "王小梅")  # extension 1001 in etc/agents.yaml


def tls_keys(live: LiveDesk, **overrides: object) -> dict[str, object]:
    """[ami] over the PBX's TLS port, the test's CA, the name its certificate carries."""
    assert live.pbx.tls is not None
    return {"port": live.pbx.ami_tls_port, "tls": True, "tls_ca_file": str(live.pbx.tls.ca),
            "tls_server_name": "localhost", **overrides}


async def test_direct_call_over_ami_tls_gets_the_card(live: LiveDesk) -> None:
    customer = "13800138051"
    daemon = await live.start_daemon(ami=tls_keys(live))
    [connected] = daemon.named("ami_connected")
    assert connected["port"] == live.pbx.ami_tls_port
    assert connected["tls"].startswith("TLSv1.") and connected["tls_verified"] is True
    assert connected["banner"].startswith("Asterisk Call Manager")
    assert live.pbx.admin is not None
    # Asterisk's own security event: the daemon's user logged in on the TLS listener
    login = await live.pbx.admin.wait_event("SuccessfulAuth", AccountID="ccshortlink")
    assert login["LocalAddress"] == f"IPV4/TLS/127.0.0.1/{live.pbx.ami_tls_port}", login
    await live.phone("1001")
    await live.call(customer, "5000", talk_ms=2000)
    [text] = await live.wait_sms(customer)
    assert AGENT[0] in text and AGENT[1] in text and "https://cs.example.com/" in text


async def test_an_untrusted_certificate_is_refused_before_the_login(live: LiveDesk) -> None:
    assert live.pbx.tls is not None and live.pbx.admin is not None
    config = write_config(live.folder, ami={
        "host": "127.0.0.1", "username": "ccshortlink", "secret": secret_of_shipped_user(),
        "reconnect_max": 0.3, **tls_keys(live, tls_ca_file=str(live.pbx.tls.stranger_ca))},
        smpp={"port": live.smsc.port})
    daemon = await RunningDaemon.start(config, wrap=live.net.command)
    live.daemon = daemon
    down = await daemon.wait_event("ami_disconnected", timeout=30)
    assert down["reason"].startswith("TLS certificate refused") and "tls_ca_file" in down["reason"]
    await daemon.wait_event("smpp_bound", timeout=30)
    await asyncio.sleep(1.5)  # several retries' worth
    assert daemon.process.returncode is None and daemon.named("ami_connected") == []
    # Asterisk never saw a login from the daemon's user, right or wrong: no security event
    assert [e for e in live.pbx.admin.events
            if e.get("AccountID") == "ccshortlink" or "Auth" in e.get("Event", "")
            and e.get("AccountID") != "ccsadmin"] == []
    assert "Traceback" not in daemon.log
