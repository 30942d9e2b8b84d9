"""The call-back dispatcher over a real SQLite file: what it logs and counts is what the
database recorded, not what it meant to record."""

from __future__ import annotations

from collections import Counter as Tally
from pathlib import Path
from typing import Any

from ccshortlink.app.callbackdispatch import CallbackDispatcher
from ccshortlink.app.callbacks import CallbackDeps, Callbacks
from ccshortlink.config.agents import parse_agents
from ccshortlink.config.callback import CallbackConfig
from ccshortlink.core.callbacks import Claim
from ccshortlink.core.policy import PolicyConfig
from ccshortlink.core.presence import PresenceBook
from ccshortlink.ops.logs import get_logger
from ccshortlink.store import Store

NOW = 1_796_600_000.0
# An agent with no extension on the PBX: a claimed call-back of theirs ends failed at once.
AGENTS = 'agents:\n  - id: CS1001\n    extensions: ["site-b:1001"]\n    name: A\n    phone: "1"\n'


class Counted:
    def __init__(self, tally: Tally[str], name: str) -> None:
        self.tally, self.name = tally, name

    def inc(self, amount: float = 1) -> None:
        self.tally[self.name] += int(amount)

    def set(self, value: float) -> None: ...


class Pbx:
    def is_up(self, pbx: str) -> bool:
        return True

    async def originate(self, pbx: str, fields: Any) -> str | None:
        raise AssertionError("nothing is to be placed")


class ClosedMeanwhile(Store):
    """Another daemon's sweep closes the call-back right after this one claimed it."""

    async def claim_callback(self, callback_id: int, now: float, *, owner: str,
                             lease_until: float) -> Claim:
        claim = await super().claim_callback(callback_id, now, owner=owner,
                                             lease_until=lease_until)
        await self.close_abandoned_callbacks(now, starting=True)
        return claim


async def test_an_outcome_is_counted_only_when_recorded(tmp_path: Path) -> None:
    tally: Tally[str] = Tally()
    async with await ClosedMeanwhile.open(tmp_path / "db.sqlite") as store:
        await store._write(lambda db: db.execute(
            "INSERT INTO links (code, agent_id, customer_number, created_at, expires_at, pbx)"
            " VALUES ('aaaa1111', 'CS1001', '+8613800138000', ?, ?, 'site-a')",
            (NOW - 60, NOW + 86400)))
        agents = parse_agents(AGENTS, tmp_path / "agents.yaml")
        deps = CallbackDeps(store=store, config=CallbackConfig(enabled=True),
                            agents=lambda: agents, pbxs=["site-a", "site-b"],
                            policy=PolicyConfig(), presence=PresenceBook(),
                            clock=lambda: NOW, log=get_logger(),
                            outcomes=lambda outcome: Counted(tally, outcome))
        await Callbacks(deps).request("aaaa1111")
        dispatcher = CallbackDispatcher(deps, Pbx(), waiting=Counted(tally, "waiting"),
                                        mark_callback=lambda pbx, linkedid: None, owner="me")
        await dispatcher._tick()
        latest = await store.latest_callback("aaaa1111")
        assert latest is not None and latest.reason == "daemon_restart"  # the sweep's
        assert tally["failed"] == 0  # the sweeping daemon counted it, not this one
