"""Two real Asterisks into one daemon: extension 1001 is Ann on one and Bob on the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.configfile import TWO_SITE_AGENTS, write_config
from tests.support.daemon import RunningDaemon
from tests.support.livekit import LiveDesk, secret_of_shipped_user
from tests.support.pbx import Asterisk, find_install

pytestmark = pytest.mark.live



def ami_table(name: str, pbx: Asterisk) -> dict[str, object]:
    return {"name": name, "host": "127.0.0.1", "port": pbx.ports.ami, "username": "ccshortlink",
            "secret": secret_of_shipped_user(), "reconnect_max": 0.5}


async def test_a_call_on_each_pbx_gives_one_card_naming_that_pbxs_agent(
        live: LiveDesk, tmp_path: Path) -> None:
    install = find_install()
    assert install is not None  # `live` has checked
    # The second site: its own Asterisk, ports and RTP range, in the same network namespace.
    site_b = LiveDesk(live.net, tmp_path / "site-b", Asterisk(
        install, live.net, tmp_path / "site-b" / "asterisk", name="pbxb", rtp_start=30200),
        live.smsc)
    try:
        await site_b.pbx.start()
        live.config = write_config(tmp_path, ami=[ami_table("site-a", live.pbx),
                                                  ami_table("site-b", site_b.pbx)],
                                   smpp={"port": live.smsc.port})
        (tmp_path / "agents.yaml").write_text(TWO_SITE_AGENTS, encoding="utf-8")
        live.daemon = daemon = await RunningDaemon.start(live.config, wrap=live.net.command)
        await daemon.wait_event("daemon_ready", timeout=30)
        await daemon.wait_for(lambda: {e.get("pbx") for e in daemon.named("ami_connected")}
                              == {"site-a", "site-b"}, timeout=30)

        await live.phone("1001")  # Ann's phone, on site-a
        await site_b.phone("1001")  # Bob's phone, on site-b
        await live.call("13800138021", "5000", talk_ms=2000)  # a customer calls each site
        await site_b.call("13800138022", "5000", talk_ms=2000)
        [to_a] = await live.wait_sms("13800138021")
        [to_b] = await live.wait_sms("13800138022")
        assert "Ann Site-A" in to_a and "CSA1001" in to_a and "Bob" not in to_a, to_a
        assert "Bob Site-B" in to_b and "CSB1001" in to_b and "Ann" not in to_b, to_b

        for customer, pbx, agent in (("13800138021", "site-a", "CSA1001"),
                                     ("13800138022", "site-b", "CSB1001")):
            [decision] = [e for e in live.trace(customer)["events"] if e["kind"] == "decision"]
            assert (decision["pbx"], decision["agent"], decision["outcome"]) == (
                pbx, agent, "sent")
        # One card per call, nothing more (each may take two parts).
        assert len([m for m in live.smsc.messages() if m.complete]) == 2
    finally:
        for sipp in site_b.sipps:
            await sipp.stop()
        await site_b.pbx.stop()
