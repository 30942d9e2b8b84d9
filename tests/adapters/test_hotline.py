"""Returning callers reach their agent: GET /api/v1/preferred-agent, and the shipped dialplan
that asks it, walked call by call against the web app on a real loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web

from ccshortlink.core.records import PreferredAgent
from ccshortlink.store import Store
from ccshortlink.web.context import DEPS
from tests.support.cardkit import (
    CODE,
    CUSTOMER,
    Site,
    build_desk_site,
    issue,
    trust,
    write_agents,
)
from tests.support.dialplan import SHIPPED, Call, calls_in, read_contexts
from tests.support.fakedesk import FakeDesk

OPTED_OUT = "+8613900139000"
STRANGER = "+8613700137000"
SHIPPED_URL = "http://127.0.0.1:8080/api/v1/preferred-agent"


@dataclass
class Served:
    site: Site
    desk: FakeDesk
    base: str


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with await Store.open(tmp_path / "ccshortlink.db") as store:
        site, desk = build_desk_site(store, write_agents(tmp_path))
        await issue(site.store, site.clock, CODE)
        # What the real desk answers: the agent of the latest live link; an opted-out number
        # has none (the fake does not decide this, it only says what the web layer passes on).
        desk.preferred[CUSTOMER] = PreferredAgent(extension="1001", agent_id="CS1001",
                                                  available=True)
        runner = web.AppRunner(site.app)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        try:
            yield Served(site, desk, f"http://127.0.0.1:{runner.addresses[0][1]}")
        finally:
            await runner.cleanup()


async def get(url: str, **headers: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        return answer.status, answer.headers["Content-Type"], await answer.text()


async def test_the_lookup_answers_json_and_text_from_this_box(served: Served) -> None:
    url = f"{served.base}/api/v1/preferred-agent"
    with structlog.testing.capture_logs() as logged:
        status, kind, body = await get(f"{url}?number=13800138000")
    assert (status, kind) == (200, "application/json; charset=utf-8")
    assert body == '{"extension": "1001", "agent_id": "CS1001", "available": true}'
    assert await get(f"{url}?number=%2B8613800138000&format=text") == (
        200, "text/plain; charset=utf-8", "1001")
    assert await get(f"{url}?number=0086%20138%200013%208000&format=text") == (
        200, "text/plain; charset=utf-8", "1001")
    # the number as the PBX shows it, always asked as E.164
    assert served.desk.lookups == [CUSTOMER] * 3
    assert await get(f"{url}?number={STRANGER[1:]}") == (
        200, "application/json; charset=utf-8",
        '{"extension": null, "agent_id": null, "available": null}')
    assert (await get(f"{url}?number={STRANGER[1:]}&format=text"))[::2] == (200, "")
    lookups = [e for e in logged if e["event"] == "preferred_agent_lookup"]
    assert lookups == [{"component": "web", "event": "preferred_agent_lookup",
                        "number": "+86138****8000", "agent": "CS1001", "found": True,
                        "available": True, "status": 200, "log_level": "info"}]


async def test_free_1_leaves_a_busy_agent_out_of_the_text_answer(served: Served) -> None:
    url = f"{served.base}/api/v1/preferred-agent?number={CUSTOMER[1:]}"
    text, free = f"{url}&format=text", f"{url}&format=text&free=1"
    assert (await get(free))[::2] == (200, "1001")  # free now
    for available, shown in ((False, "false"), (None, "null")):
        served.desk.preferred[CUSTOMER] = PreferredAgent(extension="1001", agent_id="CS1001",
                                                         available=available)
        # busy or away: nothing to Dial(), the caller goes straight to the queue; presence
        # not known (no PBX event about the agent yet): ring them as before
        assert (await get(free))[::2] == (200, "" if available is False else "1001")
        assert (await get(text))[::2] == (200, "1001")
        # JSON says it all whatever free= asks
        assert (await get(f"{url}&free=1"))[::2] == (
            200, f'{{"extension": "1001", "agent_id": "CS1001", "available": {shown}}}')


async def test_a_missing_or_unreadable_number_is_a_400(served: Served) -> None:
    url = f"{served.base}/api/v1/preferred-agent"
    for query in ("", "?number=", "?number=anonymous", "?number=1001", "?number=12"):
        status, _, body = await get(url + query)
        assert status == 400 and "error" in body
        # CURL() takes the body whatever the status: nothing to Dial() in it
        assert (await get(url + query + ("&" if "?" in query else "?") + "format=text"))[::2] \
            == (400, "")
    assert served.desk.lookups == []


async def test_from_elsewhere_the_lookup_needs_the_token(served: Served) -> None:
    url = f"{served.base}/api/v1/preferred-agent?number={CUSTOMER[1:]}"
    trust(served.site, "127.0.0.1")  # a proxy on this box: its clients are not this box
    elsewhere = {"X-Forwarded-For": "203.0.113.9"}
    assert (await get(url, **elsewhere))[0] == 401
    status, _, body = await get(url, Authorization="Bearer s3cret-token", **elsewhere)
    assert status == 200 and '"1001"' in body
    assert (await get(url, Authorization="Bearer nope", **elsewhere))[0] == 401


@pytest.mark.parametrize(("header", "value"), [
    ("X-Forwarded-For", "203.0.113.9"),
    ("Forwarded", "for=203.0.113.9;proto=https"),
    ("X-Real-IP", "203.0.113.9"),
    ("X-Forwarded-Host", "c.example.com"),
    ("X-Forwarded-Proto", "https"),
    ("Via", "1.1 c.example.com"),
])
async def test_a_proxy_on_this_box_does_not_make_its_clients_local(
        served: Served, header: str, value: str) -> None:
    # nginx on the same box, [web] trusted_proxies left empty: the socket says 127.0.0.1
    url = f"{served.base}/api/v1/preferred-agent?number={CUSTOMER[1:]}&format=text"
    # no body for CURL(): an error text would end up in the dialplan's Dial()
    assert (await get(url, **{header: value}))[::2] == (401, "")
    assert (await get(url.replace("&format=text", ""), **{header: value}))[::2] == (
        401, '{"error": "missing or wrong bearer token"}')
    assert (await get(url, Authorization="Bearer s3cret-token", **{header: value}))[::2] == (
        200, "1001")
    assert (await get(url))[::2] == (200, "1001")  # Asterisk's own CURL(): no such header
    assert served.desk.lookups == [CUSTOMER] * 2


async def test_lookup_without_token_false_needs_the_token_from_this_box_too(
        served: Served) -> None:
    served.site.app[DEPS].lookup_without_token = False  # what the config key does
    url = f"{served.base}/api/v1/preferred-agent?number={CUSTOMER[1:]}&format=text"
    assert (await get(url))[0] == 401
    assert (await get(url, Authorization="Bearer s3cret-token"))[::2] == (200, "1001")
    assert served.desk.lookups == [CUSTOMER]


def test_the_shipped_hotline_contexts_read_as_asterisk_would() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    contexts = read_contexts(text)
    assert {"ccshortlink-features", "ccshortlink-hotline",
            "ccshortlink-hotline-freepbx"} <= set(contexts)
    for name in ("ccshortlink-hotline", "ccshortlink-hotline-freepbx"):
        steps = contexts[name]["s"]
        assert [s.priority for s in steps] == list(range(1, len(steps) + 1))
        assert {"fallback", "done"} <= {s.label for s in steps}
        (url,) = [u for s in steps for u in calls_in(s.args, "CURL")]
        assert url == (f"{SHIPPED_URL}?number=${{URIENCODE(${{CALLERID(num)}})}}"
                       "&format=text&free=1")
        # the bearer token only when CCS_API_TOKEN is set (func_curl's httpheader option)
        assert [s.args for s in steps if "httpheader" in s.args] == [
            "CURLOPT(httpheader)=Authorization: Bearer ${CCS_API_TOKEN}"]
        assert [s.app for s in steps if s.app == "Dial"] == ["Dial"]


@pytest.mark.parametrize(("context", "queue"), [
    ("ccshortlink-hotline", "Queue(support)"),
    ("ccshortlink-hotline-freepbx", "Goto(ext-queues,400,1)"),
])
async def test_callers_walk_the_shipped_dialplan(served: Served, context: str,
                                                 queue: str) -> None:
    contexts = read_contexts(SHIPPED.read_text(encoding="utf-8"))
    asked: list[str] = []

    sent: list[dict[str, str]] = []

    async def curl(url: str, headers: dict[str, str]) -> str:
        """func_curl: the body whatever the status; nothing when there is no answer."""
        asked.append(url)
        sent.append(headers)
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    url.replace("http://127.0.0.1:8080", served.base), headers=headers) as answer:
                return await answer.text()
        except aiohttp.ClientError:
            return ""

    async def walk(caller_id: str, dial_status: str = "ANSWER",
                   **variables: str) -> list[str]:
        call = Call({"CALLERID(num)": caller_id, **variables}, curl, dial_status)
        await call.run(contexts, context)
        assert call.curl_options == {"conntimeout": "1", "httptimeout": "2"}
        return call.did

    assert await walk("+8613800138000") == ["Dial(PJSIP/1001,20)", "Hangup()"]
    assert asked[-1] == f"{SHIPPED_URL}?number=%2B8613800138000&format=text&free=1"
    assert sent[-1] == {}  # from this box: no token
    assert await walk("013800138000", "NOANSWER") == ["Dial(PJSIP/1001,20)", queue]
    assert await walk("13800138000", CCS_RING_SECONDS="12") == [
        "Dial(PJSIP/1001,12)", "Hangup()"]
    assert await walk(STRANGER) == [queue]
    assert await walk(OPTED_OUT) == [queue]
    assert await walk("anonymous") == [queue]
    assert await walk(STRANGER, CCS_FALLBACK="sales,200,1") == ["Goto(sales,200,1)"]
    assert served.desk.lookups == [CUSTOMER] * 3 + [STRANGER, OPTED_OUT, STRANGER]
    # the agent on another call: not rung, the caller reaches the queue at once; presence
    # not known: rung as before
    served.desk.preferred[CUSTOMER] = PreferredAgent(extension="1001", agent_id="CS1001",
                                                     available=False)
    assert await walk("+8613800138000") == [queue]
    served.desk.preferred[CUSTOMER] = PreferredAgent(extension="1001", agent_id="CS1001",
                                                     available=None)
    assert await walk("+8613800138000") == ["Dial(PJSIP/1001,20)", "Hangup()"]
    # [callback] lookup_without_token = false (or the daemon elsewhere): the dialplan sends
    # [web] api_token from CCS_API_TOKEN; without it the lookup is refused, empty, the queue
    served.site.app[DEPS].lookup_without_token = False
    assert await walk("+8613800138000") == [queue]
    assert await walk("+8613800138000", CCS_API_TOKEN="s3cret-token") == [
        "Dial(PJSIP/1001,20)", "Hangup()"]
    assert sent[-1] == {"Authorization": "Bearer s3cret-token"}
    assert await walk("+8613800138000", CCS_API_TOKEN="wrong") == [queue]
    # the daemon down: CURL() gives nothing, the caller reaches the queue all the same
    served.base = "http://127.0.0.1:9"
    assert await walk("+8613800138000") == [queue]
