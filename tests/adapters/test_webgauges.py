"""What /metrics reads from the real SQLite file at scrape time: links by state, outbox age."""

from __future__ import annotations

from ccshortlink.web.scrape import LINKS_EVERY
from tests.support.cardkit import Client, Site, issue


async def links_gauge(client: Client) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    return {state: float(value) for state, value in
            (line.removeprefix('ccshortlink_links{state="').split('"} ')
             for line in text.splitlines() if line.startswith("ccshortlink_links{"))}


async def test_links_are_counted_by_state_every_few_minutes(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, "LiveLink23")
    await issue(site.store, site.clock, "Revoked234", customer_number="+8613900139001",
                linkedid="2.1")
    await issue(site.store, site.clock, "ShortOne23", customer_number="+8613900139002",
                linkedid="3.1", ttl=100)
    await site.store.revoke_link("Revoked234", site.clock())
    assert await links_gauge(client) == {"live": 2, "expired": 0, "revoked": 1}
    site.clock.advance(200)  # the short link has expired, but the count is kept a while
    assert await links_gauge(client) == {"live": 2, "expired": 0, "revoked": 1}
    site.clock.advance(LINKS_EVERY - 200)
    assert await links_gauge(client) == {"live": 1, "expired": 1, "revoked": 1}


async def test_nothing_waiting_reads_zero(site: Site, client: Client) -> None:
    text = await (await client.get("/metrics")).text()
    assert "ccshortlink_outbox_oldest_due_seconds 0.0" in text
    assert 'ccshortlink_sms_total{status="failed"} 0.0' in text  # for the failure ratio
