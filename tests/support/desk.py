"""The real sending path (cards, outbox, store) on one SQLite file, with a clock the test moves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from ccshortlink.app.outbox import Outbox
from ccshortlink.app.sending import CardOutcome, CardService
from ccshortlink.config.agents import load_agents
from ccshortlink.config.settings import Config, load_config
from ccshortlink.core.calls import CallEnded
from ccshortlink.core.links import SmsTemplates
from ccshortlink.core.sms import EncodedSms
from ccshortlink.ops.logs import get_logger
from ccshortlink.store.choose import AnyStore as Store
from ccshortlink.store.choose import open_store
from tests.support.configfile import write_config

ZONE = "Asia/Shanghai"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedGateway:
    """An SMSC stand-in: answers each submit with message ids, or raises the next scripted error."""

    def __init__(self, *errors: BaseException, prefix: str = "m") -> None:
        self.errors = list(errors)
        self.prefix = prefix  # message ids must differ between gateways on one database
        self.submitted: list[str] = []

    async def submit(self, destination: str, sms: EncodedSms) -> list[str]:
        self.submitted.append(destination)
        if self.errors:
            raise self.errors.pop(0)
        return [f"{self.prefix}{len(self.submitted)}-{i}" for i in range(len(sms.parts))]


@dataclass
class Desk:
    """The real sending path on one SQLite file, with a clock the test moves."""

    config: Config
    config_path: Path
    store: Store
    cards: CardService
    clock: Clock

    async def call(self, linkedid: str, extension: str, number: str, talk: float) -> CardOutcome:
        return await self.cards.handle(CallEnded(linkedid, extension, number, talk_seconds=talk))

    async def send_due(self, gateway: ScriptedGateway) -> None:
        """Run the outbox until nothing due is left to submit."""
        outbox = Outbox(store=self.store, gateway=gateway, clock=self.clock, log=get_logger(),
                        max_attempts=5, concurrency=4)
        stop = asyncio.Event()
        task = asyncio.create_task(outbox.run(stop))
        for _ in range(500):
            await asyncio.sleep(0.01)
            due = await self.store.next_due_at()
            counts = await self.store.sms_status_counts()
            if (due is None or due > self.clock()) and not counts.get("submitting"):
                break
        stop.set()
        await task


# The stories' SMS is two UCS-2 parts, so each part's message id and receipt is in them: the
# longer text the default zh-CN template had before it was shortened to fit one part.
TWO_PART_TEMPLATE = ("您好，刚才为您服务的是{{ agent.name }}（工号{{ agent.id }}）。"
                     "下次可直接联系TA：{{ url }} 回TD退订")


async def open_desk(folder: Path, start: float, **sections: dict[str, object]) -> Desk:
    sections.setdefault("sms", {"template": TWO_PART_TEMPLATE})
    config_path = write_config(folder, **sections)
    config = load_config(config_path)
    agents = load_agents(config.agents_file)
    templates = SmsTemplates(config.sms.templates, config.sms.default_language)
    clock = Clock(start)
    store = await open_store(config.db)
    cards = CardService(store=store, config=config, agents=lambda: agents,
                        templates=lambda: templates, clock=clock, log=get_logger())
    return Desk(config, config_path, store, cards, clock)
