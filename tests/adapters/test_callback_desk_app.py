"""The call-back desk over a real SQLite file: the agent's own hours, the PBX that places it,
presence, and the preferred agent of a number as the PBX shows it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ccshortlink.app.callbacks import CallbackDeps, Callbacks
from ccshortlink.config.agents import parse_agents
from ccshortlink.config.callback import CallbackConfig
from ccshortlink.core.policy import PolicyConfig
from ccshortlink.core.presence import PresenceBook
from ccshortlink.core.records import PreferredAgent
from ccshortlink.core.vocab import CallbackState, Presence
from ccshortlink.ops.logs import get_logger
from ccshortlink.store import Store

AGENTS = """\
agents:
  - id: CS1001
    extensions: ["1001", "site-b:2001"]
    name: A
    phone: "1"
    hours: "Sat-Sun 10:00-16:00"
  - id: CS1002
    extensions: ["1002"]
    name: B
    phone: "2"
"""
MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


class Count:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[Callbacks, Store, dict[str, Any]]]:
    agents = parse_agents(AGENTS, tmp_path / "agents.yaml")
    woken: dict[str, Any] = {"wakes": 0, "refused": Count()}
    async with await Store.open(tmp_path / "db.sqlite") as store:
        for code, agent, number, pbx in [("aaaa1111", "CS1001", "+8613800138000", "site-b"),
                                         ("bbbb2222", "CS1002", "+8613900139000", "")]:
            await store._write(lambda db, c=code, a=agent, n=number, p=pbx: db.execute(
                "INSERT INTO links (code, agent_id, customer_number, created_at, expires_at, pbx)"
                " VALUES (?, ?, ?, ?, ?, ?)", (c, a, n, MONDAY_NOON - 60, MONDAY_NOON + 86400, p)))
        deps = CallbackDeps(
            store=store, config=CallbackConfig(enabled=True, hours="Mon-Fri 09:00-18:00"),
            agents=lambda: agents, pbxs=["site-a", "site-b"], policy=PolicyConfig(),
            presence=PresenceBook(), clock=lambda: MONDAY_NOON, log=get_logger(),
            outcomes=lambda outcome: woken["refused"],
            wake=lambda: woken.__setitem__("wakes", woken["wakes"] + 1))
        yield Callbacks(deps), store, woken


async def test_the_agents_own_hours_win_over_the_default(desk: Any) -> None:
    callbacks, store, woken = desk
    weekend_only = await callbacks.request("aaaa1111")  # CS1001 works Sat-Sun
    assert weekend_only is not None and weekend_only.state == CallbackState.REFUSED
    assert weekend_only.opens_at == datetime(2026, 12, 12, 10, 0,
                                             tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    assert woken["refused"].value == 1 and woken["wakes"] == 0
    weekday = await callbacks.request("bbbb2222")  # CS1002: [callback] hours, open
    assert weekday is not None and weekday.state == CallbackState.WAITING
    assert woken["wakes"] == 1
    latest = await store.latest_callback("bbbb2222")
    assert latest is not None and latest.pbx == "site-a"  # no PBX on the link: the first
    assert await callbacks.latest("aaaa1111") == weekend_only


async def test_presence_and_the_preferred_agent(desk: Any) -> None:
    callbacks, store, _ = desk
    book = callbacks.deps.presence
    assert callbacks.presence("CS1001") == Presence.UNKNOWN
    # as the PBX shows the caller: national, with +, with 00
    for shown in ("13800138000", "+8613800138000", "008613800138000"):
        assert await callbacks.preferred_agent(shown) == PreferredAgent("2001", "CS1001", None)
    book.on_event("site-b", {"Event": "DeviceStateChange", "Device": "PJSIP/2001",
                             "State": "NOT_INUSE"})
    assert await callbacks.preferred_agent("13800138000") == PreferredAgent(
        "2001", "CS1001", True)
    book.on_event("site-a", {"Event": "DeviceStateChange", "Device": "PJSIP/1001",
                             "State": "INUSE"})
    assert callbacks.presence("CS1001") == Presence.BUSY  # on a call on the other PBX
    assert (await callbacks.preferred_agent("13800138000")).available is True  # site-b's
    nobody = PreferredAgent(None, None, None)
    assert await callbacks.preferred_agent("13700000000") == nobody
    assert await callbacks.preferred_agent("anonymous") == nobody
    await store.set_opt_out("+8613800138000", True, "sms", MONDAY_NOON)
    assert await callbacks.preferred_agent("13800138000") == nobody
