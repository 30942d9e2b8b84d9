"""The card's "call me back" button, presence and call-back states, and the tap, in-process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from ccshortlink.core.vocab import CallbackState, Presence
from ccshortlink.store import Store
from ccshortlink.web.context import DEPS
from tests.support.cardkit import (
    CODE,
    CUSTOMER,
    IPHONE,
    OWN_PAGE,
    Client,
    Site,
    build_desk_site,
    issue,
    page,
    visits,
    write_agents,
)
from tests.support.fakedesk import FakeDesk

NATIONAL = CUSTOMER[3:]  # 13800138000: in no form may the number reach the page or the log
TAP = {"User-Agent": IPHONE, **OWN_PAGE}
EN = {"Accept-Language": "en"}


@pytest.fixture
async def desk_site(tmp_path: Path) -> AsyncIterator[tuple[Site, FakeDesk]]:
    async with await Store.open(tmp_path / "ccshortlink.db") as store:
        site, desk = build_desk_site(store, write_agents(tmp_path))
        await issue(site.store, site.clock, CODE)
        yield site, desk


@pytest.fixture
async def desk_client(desk_site: tuple[Site, FakeDesk]) -> AsyncIterator[Client]:
    async with TestClient(TestServer(desk_site[0].app)) as test_client:
        yield test_client


def shows(body: str) -> dict[str, object]:
    """What the customer sees of the call-back part of a card."""
    presence = re.search(r'<p class="presence (\w+)"><span aria-hidden="true"></span>([^<]*)<',
                         body)
    status = re.search(r'<form id="callback".*?<p class="note[^"]*" role="status">([^<]*)<',
                       body, re.DOTALL)
    return {"button": f'action="{CODE}/callback"' in body and "Call me back</button>" in body,
            "presence": presence.group(2) if presence else None,
            "status": status.group(1) if status else None,
            "refresh": 'http-equiv="refresh"' in body}


async def test_no_button_and_no_routes_while_callbacks_are_off(site: Site, client: Client) -> None:
    await issue(site.store, site.clock, CODE)
    response, body = await page(client, f"/{CODE}", **EN)
    assert response.status == 200
    assert f'action="{CODE}/callback"' not in body and '<p class="presence' not in body
    tapped = await client.post(f"/{CODE}/callback", headers=TAP, allow_redirects=False)
    assert tapped.status == 404
    lookup = await client.get(f"/api/v1/preferred-agent?number={NATIONAL}")
    assert lookup.status == 404


async def test_the_button_beside_the_call_button_and_the_agents_presence(
        desk_site: tuple[Site, FakeDesk], desk_client: Client) -> None:
    _, desk = desk_site
    _, body = await page(desk_client, f"/{CODE}", **EN)
    assert shows(body) == {"button": True, "presence": None, "status": None, "refresh": False}
    assert 'href="tel:+862088880000,,1001"' in body  # the direct call stays
    assert '<form id="callback" class="callback" method="post" action="Kd7mPq2xZ9/callback">' \
        in body
    # Within the card cache's 5 s the presence is still as of now.
    for presence, words in ((Presence.FREE, "Available now"), (Presence.BUSY, "On a call"),
                            (Presence.AWAY, "Away"), (Presence.UNKNOWN, None)):
        desk.presences["CS1001"] = presence
        _, body = await page(desk_client, f"/{CODE}", **EN)
        assert shows(body)["presence"] == words
    desk.presences["CS1001"] = Presence.BUSY
    _, body = await page(desk_client, f"/{CODE}")
    assert "客服正在通话" in body and "请客服回电给我" in body


async def test_a_tap_asks_the_desk_redirects_to_the_card_and_shows_calling(
        desk_site: tuple[Site, FakeDesk], desk_client: Client) -> None:
    site, desk = desk_site
    await page(desk_client, f"/{CODE}", **EN)
    with structlog.testing.capture_logs() as logged:
        tapped = await desk_client.post(f"/{CODE}/callback", headers=TAP, allow_redirects=False)
    assert tapped.status == 303
    assert tapped.headers["Location"] == f"../{CODE}?callback=1#callback"
    assert desk.requests == [CODE]
    taps = [e for e in logged if e["event"] == "callback_tapped"]
    assert taps == [{"component": "web", "event": "callback_tapped", "code": CODE,
                     "agent": "CS1001", "callback": 1, "outcome": CallbackState.CALLING_AGENT,
                     "reason": "", "status": 303, "log_level": "info"}]
    response, body = await page(desk_client, f"/{CODE}?callback=1", **EN)
    assert response.status == 200
    assert shows(body) == {"button": False, "presence": None,
                           "status": "Calling you now — your phone will ring shortly",
                           "refresh": True}
    assert f'content="5;url={CODE}?callback=1"' in body
    for form in (CUSTOMER, NATIONAL, CUSTOMER[1:]):
        assert form not in body and form not in str(logged)
    # The redirect and the page's own refreshes are the same visit as the first open.
    assert await visits(site, "open") == 1
    desk.set_state(CODE, CallbackState.DONE, talk_seconds=185)
    _, body = await page(desk_client, f"/{CODE}?callback=1", **EN)
    assert shows(body) == {"button": True, "presence": None,
                           "status": "You talked for 3 min", "refresh": False}


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("state", "extra", "words", "in_progress"), [
    # Waiting while nothing says the agent is busy: placed at the dispatcher's next turn.
    (CallbackState.WAITING, {}, "We will call you in a moment — keep your phone at hand", True),
    (CallbackState.CALLING_CUSTOMER, {}, "Calling you now — your phone will ring shortly", True),
    (CallbackState.CONNECTED, {}, "You are connected", True),
    (CallbackState.CUSTOMER_MISSED, {}, "We could not reach you — you can try again", False),
    (CallbackState.AGENT_MISSED, {},
     "The agent could not take the call — please try again", False),
    (CallbackState.EXPIRED, {}, "The agent stayed busy — please try again later", False),
    (CallbackState.FAILED, {"reason": "pbx_refused"},
     "The call-back could not be placed — please try again or call us", False),
    # START is Tuesday 2023-11-14 22:13 UTC (the site's [policy] zone here)
    (CallbackState.REFUSED, {"reason": "outside_hours", "opens_at": at("2023-11-15T09:00")},
     "Outside working hours — tomorrow from 09:00", False),
    (CallbackState.REFUSED, {"reason": "outside_hours", "opens_at": at("2023-11-17T08:30")},
     "Outside working hours — Friday from 08:30", False),
    (CallbackState.REFUSED, {"reason": "outside_hours", "opens_at": at("2023-11-14T23:00")},
     "Outside working hours — today from 23:00", False),
    (CallbackState.REFUSED, {"reason": "link_limit"},
     "That is as many call-backs as we can place today — please call us", False),
    (CallbackState.REFUSED, {"reason": "opted_out"},
     "This number has opted out, so we will not call it", False),
    (CallbackState.DONE, {}, "We called you back", False),
])
async def test_each_state_in_plain_words(desk_site: tuple[Site, FakeDesk], desk_client: Client,
                                         state: CallbackState, extra: dict[str, object],
                                         words: str, in_progress: bool) -> None:
    _, desk = desk_site
    desk.set_state(CODE, state, **extra)  # type: ignore[arg-type]
    _, body = await page(desk_client, f"/{CODE}", **EN)
    assert shows(body) == {"button": not in_progress, "presence": None, "status": words,
                           "refresh": in_progress}
    assert ('class="note err"' in body) == (state in (
        CallbackState.CUSTOMER_MISSED, CallbackState.AGENT_MISSED, CallbackState.EXPIRED,
        CallbackState.FAILED, CallbackState.REFUSED))


async def test_waiting_for_a_busy_agent_says_so(desk_site: tuple[Site, FakeDesk],
                                                desk_client: Client) -> None:
    _, desk = desk_site
    desk.presences["CS1001"] = Presence.BUSY
    desk.set_state(CODE, CallbackState.WAITING)
    _, body = await page(desk_client, f"/{CODE}", **EN)
    assert shows(body) == {"button": False, "presence": "On a call", "refresh": True,
                           "status": "The agent is busy — we will call you when they are free"}


async def test_outside_hours_in_chinese(desk_site: tuple[Site, FakeDesk],
                                        desk_client: Client) -> None:
    _, desk = desk_site
    desk.refuse = ("outside_hours", at("2023-11-15T09:00"))
    tapped = await desk_client.post(f"/{CODE}/callback", headers=TAP, allow_redirects=False)
    assert tapped.status == 303
    _, body = await page(desk_client, f"/{CODE}?callback=1")
    assert "现在是非工作时间，明天 09:00 起可回电" in body and "请客服回电给我" in body


async def test_a_tap_from_another_site_is_refused(desk_site: tuple[Site, FakeDesk],
                                                  desk_client: Client) -> None:
    _, desk = desk_site
    for headers in ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
                    {"Origin": "https://evil.example"}, {}):
        tapped = await desk_client.post(f"/{CODE}/callback", allow_redirects=False,
                                        headers={"User-Agent": IPHONE, **headers})
        assert tapped.status == 403
    assert desk.requests == []


async def test_taps_are_rate_limited_and_dead_codes_are_not_found(
        desk_site: tuple[Site, FakeDesk], desk_client: Client) -> None:
    site, desk = desk_site
    answers = [(await desk_client.post(f"/{CODE}/callback", headers=TAP,
                                       allow_redirects=False)).status for _ in range(11)]
    assert answers == [303] * 10 + [429]
    site.clock.advance(61)
    assert (await desk_client.post("/Nope12345/callback", headers=TAP)).status == 404
    desk.not_live.add(CODE)  # revoked between the card's cache and the tap
    assert (await desk_client.post(f"/{CODE}/callback", headers=TAP)).status == 404
    assert desk.requests.count(CODE) == 11


async def test_the_card_cache_keeps_a_page_per_state(desk_site: tuple[Site, FakeDesk],
                                                     desk_client: Client) -> None:
    site, desk = desk_site
    states = [CallbackState.CALLING_AGENT, CallbackState.CALLING_CUSTOMER,
              CallbackState.CONNECTED, CallbackState.DONE] * 5
    for state in states:
        desk.set_state(CODE, state, talk_seconds=60)
        _, body = await page(desk_client, f"/{CODE}?callback=1", **EN,
                             **{"Accept-Encoding": "gzip"})
        assert shows(body)["refresh"] == (state != CallbackState.DONE)
    entry = await site.app[DEPS].links.lookup(CODE)
    assert entry is not None and 0 < len(entry.pages) <= 8


async def test_a_busy_card_without_a_call_back_asks_the_desk_once_in_5_s(
        desk_site: tuple[Site, FakeDesk], desk_client: Client) -> None:
    site, desk = desk_site
    for _ in range(20):
        _, body = await page(desk_client, f"/{CODE}", **EN)
    assert desk.latest_asked == [CODE] and shows(body)["status"] is None
    site.clock.advance(5)
    await page(desk_client, f"/{CODE}", **EN)
    assert len(desk.latest_asked) == 2
    # A tap forgets it at once; while the call-back is under way every open asks.
    await desk_client.post(f"/{CODE}/callback", headers=TAP, allow_redirects=False)
    for _ in range(3):
        _, body = await page(desk_client, f"/{CODE}", **EN)
        assert shows(body)["status"] == "Calling you now — your phone will ring shortly"
    assert len(desk.latest_asked) == 5
    # Ended: settled again, until the customer's own page after a tap asks afresh.
    desk.set_state(CODE, CallbackState.CUSTOMER_MISSED)
    for _ in range(3):
        _, body = await page(desk_client, f"/{CODE}", **EN)
    assert len(desk.latest_asked) == 6
    desk.set_state(CODE, CallbackState.CALLING_AGENT)  # a tap through another daemon
    _, body = await page(desk_client, f"/{CODE}?callback=1", **EN)
    assert shows(body)["status"] == "Calling you now — your phone will ring shortly"


async def test_a_desk_failure_is_a_503_not_a_crash(desk_site: tuple[Site, FakeDesk],
                                                   desk_client: Client) -> None:
    _, desk = desk_site

    async def broken(code: str) -> None:
        raise OSError("database is locked")

    desk.request = broken  # type: ignore[method-assign, assignment]
    with structlog.testing.capture_logs() as logged:
        tapped = await desk_client.post(f"/{CODE}/callback", headers=TAP, allow_redirects=False)
    assert (tapped.status, tapped.headers["Retry-After"]) == (503, "10")
    assert [e["error"] for e in logged if e["event"] == "callback_tap_failed"] == ["OSError"]
