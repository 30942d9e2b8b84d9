"""The web layer's test kit, loaded as a plugin: agents on disk, a real store, a site, a clock."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from ccshortlink.app.ports import CallbackDesk
from ccshortlink.config.agents import load_agents
from ccshortlink.config.settings import WebConfig
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.records import DecisionRecord
from ccshortlink.ops.logs import get_logger
from ccshortlink.ops.metrics import Metrics
from ccshortlink.store.choose import AnyStore as Store
from ccshortlink.web.app import make_app
from ccshortlink.web.context import DEPS
from tests.support.fakedesk import FakeDesk
from tests.support.pgkit import open_backend, peek_db

CUSTOMER = "+8613800138000"
START = 1_700_000_000.0
DAY = 86_400.0

AGENTS_YAML = """\
agents:
  - id: CS1001
    extensions: ["1001"]
    name: 王芳
    phone: "+862088880000,,1001"
    title: 高级客服专员
    slogan: 用心服务每一位客户
    avatar: avatars/wang.png
    greeting: greeting.mp3
    satisfaction: 4.8
    satisfaction_votes: 120
    calls_handled: 3200
    customers_served: 2800
    service_records:
      - title: 年度服务之星
        detail: 客户满意度全组第一
        date: "2024"
      - title: 五年服务
        date: 2019-2024
    reviews:
      - stars: 5
        text: 耐心细致，一次就解决了问题。
        author: 李先生
        date: 2024-11-02
  - id: CS2002
    extensions: ["2002"]
    name: Alice Wang
    phone: "+1 415 555 0100;ext=22"
    title: Support Lead
    language: en
    slogan: Here to help, every time.
    satisfaction: 5.0
    satisfaction_votes: 3
  - id: CS3003
    extensions: ["3003"]
    name: "<script>alert(1)</script>"
    phone: "+862088880003"
    slogan: "<img src=x onerror=alert(2)>"
"""


def png(width: int = 96, height: int = 96) -> bytes:
    """A real PNG: a person silhouette on a soft blue background."""
    rows = []
    cx = width / 2
    for y in range(height):
        row = bytearray([0])  # filter type: none
        for x in range(width):
            head = (x - cx) ** 2 + (y - height * 0.38) ** 2 <= (width * 0.2) ** 2
            body = (((x - cx) / (width * 0.36)) ** 2
                    + ((y - height * 0.98) / (height * 0.36)) ** 2) <= 1
            row += bytes((245, 248, 252)) if head or body else bytes((23, 105, 170))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def write_agents(folder: Path, text: str = AGENTS_YAML) -> Path:
    (folder / "avatars").mkdir(parents=True, exist_ok=True)
    (folder / "avatars" / "wang.png").write_bytes(png())
    # Not a real MP3 stream: the route only has to serve the bytes with the right type.
    (folder / "greeting.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 512)
    path = folder / "agents.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeSendCard:
    """Records what the API asked for and answers as told."""

    answer: dict[str, Any] = field(default_factory=lambda: {"status": "queued", "code": "Qx7",
                                                            "sms_id": 3})
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, agent_id: str, number: str) -> dict[str, Any]:
        self.calls.append((agent_id, number))
        return self.answer


def codes(*values: str) -> Callable[[], str]:
    pending = list(values)
    return lambda: pending.pop(0)


async def issue(store: Store, clock: Clock, code: str, agent_id: str = "CS1001",
                customer_number: str = CUSTOMER, ttl: float = 30 * DAY,
                linkedid: str = "1700000000.1") -> str:
    """A link as the daemon makes it after a call (with its decision, which feeds the stats)."""
    decision = DecisionRecord(linkedid=linkedid, trigger="hangup", agent_id=agent_id,
                              agent_extension=agent_id[-4:], customer_number=customer_number,
                              talk_seconds=42.0, outcome="sent", reason="")
    issued = await store.issue_link(agent_id=agent_id, customer_number=customer_number,
                                    linkedid=linkedid, now=clock(), ttl=ttl,
                                    new_code=codes(code), decision=decision)
    return issued.code


@dataclass
class Site:
    """Everything a web test touches: the app and the real peers behind it."""

    app: web.Application
    store: Store
    clock: Clock
    metrics: Metrics
    directory: list[AgentDirectory]
    states: dict[str, str]
    send_card: FakeSendCard


def build_site(store: Store, agents_file: Path, *, api_token: str = "s3cret-token",
               hotline: str = "400-820-8820", company: str = "Example Telecom",
               callbacks: Callable[[Clock], CallbackDesk] | None = None) -> Site:
    """The site; `callbacks` makes the call-back desk from the site's clock ([callback] on)."""
    clock = Clock()
    metrics = Metrics()
    directory = [load_agents(agents_file)]
    states = {"ami": "up", "smpp": "up"}
    send_card = FakeSendCard()
    config = WebConfig(host="127.0.0.1", port=0, public_url="https://c.example.com",
                       hotline=hotline, api_token=api_token, company=company)
    app = make_app(store=store, agents=lambda: directory[0], web_config=config, clock=clock,
                   health=lambda: dict(states), metrics=metrics, send_card=send_card,
                   log=get_logger(component="web"),
                   callbacks=callbacks(clock) if callbacks is not None else None)
    return Site(app=app, store=store, clock=clock, metrics=metrics, directory=directory,
                states=states, send_card=send_card)


def build_desk_site(store: Store, agents_file: Path, **options: Any) -> tuple[Site, FakeDesk]:
    """The site with [callback] on, its desk a recording fake on the site's clock."""
    desks: list[FakeDesk] = []

    def make(clock: Clock) -> FakeDesk:
        desks.append(FakeDesk(clock=clock))
        return desks[-1]

    return build_site(store, agents_file, callbacks=make, **options), desks[0]


# --- fixtures shared by the in-process web tests ------------------------------------------

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
CODE = "Kd7mPq2xZ9"
# What a current browser sends with a POST from the card itself (public_url's origin).
OWN_PAGE = {"Origin": "https://c.example.com", "Sec-Fetch-Site": "same-origin"}
Client = TestClient[web.Request, web.Application]


async def page(client: Client, path: str, **headers: str) -> tuple[ClientResponse, str]:
    response = await client.get(path, headers={"User-Agent": IPHONE, **headers},
                                allow_redirects=False)
    return response, await response.text()


def trust(site: Site, *proxies: str) -> None:
    """What `[web] trusted_proxies = [...]` in the config file does."""
    deps = site.app[DEPS]
    deps.web_config = dataclasses.replace(deps.web_config, trusted_proxies=proxies)


async def visits(site: Site, kind: str) -> int:
    """Visits of one kind in the database, once the app has written what it counted."""
    await site.app[DEPS].visits.flush()
    with peek_db(site.store) as db:
        return int(db.execute("SELECT COUNT(*) FROM visits WHERE kind = ?", (kind,)).fetchone()[0])


@pytest.fixture
async def store(tmp_path: Path, backend: str, request: pytest.FixtureRequest
                ) -> AsyncIterator[Store]:
    """On each store: a real SQLite file, and a database on the test's PostgreSQL server."""
    async with await open_backend(backend, request, tmp_path / "ccshortlink.db") as opened:
        yield opened


@pytest.fixture
async def site(store: Store, tmp_path: Path) -> Site:
    return build_site(store, write_agents(tmp_path))


@pytest.fixture
async def client(site: Site) -> AsyncIterator[Client]:
    async with TestClient(TestServer(site.app)) as test_client:
        yield test_client
