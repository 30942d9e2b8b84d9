"""The sending path's test kit, loaded as a plugin: the `env` fixture, a scripted gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ccshortlink.app.outbox import Outbox
from ccshortlink.app.sending import CardService
from ccshortlink.config.agents import load_agents
from ccshortlink.config.settings import load_config
from ccshortlink.core.links import SmsTemplates
from ccshortlink.core.sms import EncodedSms
from ccshortlink.ops.logs import get_logger
from ccshortlink.store.choose import AnyStore as Store
from ccshortlink.store.choose import open_store
from tests.support.configfile import write_config
from tests.support.desk import TWO_PART_TEMPLATE
from tests.support.pgkit import database_for

CUSTOMER = "+8613800138000"


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingGateway:
    """Answers submits from a script: message ids, or an exception to raise."""

    def __init__(self, script: list[object] | None = None) -> None:
        self.script = list(script or [])
        self.submitted: list[tuple[str, EncodedSms]] = []

    async def submit(self, destination: str, sms: EncodedSms) -> list[str]:
        self.submitted.append((destination, sms))
        step = self.script.pop(0) if self.script else None
        if isinstance(step, BaseException):
            raise step
        return [f"m{len(self.submitted)}-{i}" for i in range(len(sms.parts))]


@pytest.fixture
async def env(tmp_path: Path, backend: str, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """On each store: a real SQLite file, and a database on the test's PostgreSQL server."""
    database = database_for(backend, request, tmp_path / "state" / "ccshortlink.db")
    config = load_config(write_config(
        tmp_path, policy={"min_talk_seconds": 5}, sms={"template": TWO_PART_TEMPLATE},
        database={"url": database.url} if database.url else {}))  # 2 receipts
    agents = load_agents(config.agents_file)
    clock = Clock()
    store = await open_store(config.db)
    templates = SmsTemplates(config.sms.templates, config.sms.default_language)
    cards = CardService(store=store, config=config, agents=lambda: agents,
                        templates=lambda: templates, clock=clock, log=get_logger())
    yield config, store, cards, clock
    await store.close()


async def drain(store: Store, gateway: RecordingGateway, clock: Clock, **kw: object) -> Outbox:
    outbox = Outbox(store=store, gateway=gateway, clock=clock, log=get_logger(),
                    max_attempts=int(kw.get("max_attempts", 3)), concurrency=4)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    for _ in range(100):
        await asyncio.sleep(0.01)
        counts = await store.sms_status_counts()
        if not counts.get("queued") and not counts.get("submitting"):
            break
    stop.set()
    await task
    return outbox
