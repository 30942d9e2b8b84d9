"""The SMPP adapter's test kit, loaded as a plugin: the `connect` fixture and its Harness."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest_asyncio
import structlog
from structlog.testing import CapturingLogger

from ccshortlink.config.settings import SmppConfig
from ccshortlink.smpp.client import DeliveryReceipt, MobileOriginated, SmppClient

PASSWORD = "pw-Zx81"  # distinctive, so a leak into any log line is easy to spot
CHINESE = ("您好，刚才为您服务的是张三（工号1001）。下次可直接联系TA：https://cc.example.com/"
           "k7Hq2mXp 回TD退订。如对本次服务有任何意见或建议，欢迎随时致电我们的客服热线。")
ENGLISH_LONG = ("Thanks for calling Example Telecom. You spoke with Alice (ID 1001) today. "
                "Reach the same agent again, any time: https://cc.example.com/k7Hq2mXp - "
                "rate the call on that page {it takes 10 seconds}. Reply STOP to opt out. €0.")


def number(i: int) -> str:
    return f"+861380013{i:04d}"


@dataclass
class Harness:
    client: SmppClient
    logs: CapturingLogger
    receipts: list[DeliveryReceipt] = field(default_factory=list)
    mobile: list[MobileOriginated] = field(default_factory=list)

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [call.kwargs for call in self.logs.calls if call.kwargs.get("event") == event]


def make_config(port: int, **overrides: Any) -> SmppConfig:
    config = SmppConfig(host="127.0.0.1", port=port, system_id="ccshortlink", password=PASSWORD,
                        source_addr="CCShort", window=10, max_per_second=1000.0,
                        enquire_link_interval=5.0, response_timeout=2.0, reconnect_max=0.5)
    return replace(config, **overrides)


Connect = Callable[..., Awaitable[Harness]]


@pytest_asyncio.fixture
async def connect() -> AsyncIterator[Connect]:
    """`await connect(port, on_mo=..., **SmppConfig overrides)` -> started Harness."""
    harnesses: list[Harness] = []

    async def factory(port: int, *, start: bool = True,
                      on_mo: Callable[[MobileOriginated], Awaitable[None]] | None = None,
                      **overrides: Any) -> Harness:
        logs = CapturingLogger()
        log = structlog.wrap_logger(
            logs, processors=[],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))

        async def on_receipt(receipt: DeliveryReceipt) -> None:
            harness.receipts.append(receipt)

        async def on_mobile_originated(message: MobileOriginated) -> None:
            if on_mo is not None:
                await on_mo(message)
            harness.mobile.append(message)

        client = SmppClient(make_config(port, **overrides), on_receipt=on_receipt,
                            on_mobile_originated=on_mobile_originated, log=log)
        harness = Harness(client, logs)
        harnesses.append(harness)
        if start:
            await client.start()
        return harness

    yield factory
    for harness in harnesses:
        await harness.client.close(timeout=1.0)
        assert PASSWORD not in repr(harness.logs.calls)


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition the SMSC cannot signal (client state); fails after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
