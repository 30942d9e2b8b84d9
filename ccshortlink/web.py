"""The aiohttp application: wires the card and API routes to their injected dependencies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo

from aiohttp import web

from ccshortlink import webapi, webcard
from ccshortlink.agents import AgentDirectory
from ccshortlink.cardcache import AgentFiguresCache
from ccshortlink.cardview import MAX_REVIEWS
from ccshortlink.config import WebConfig
from ccshortlink.logs import Logger
from ccshortlink.metrics import Metrics
from ccshortlink.store import Store
from ccshortlink.webcontext import DEPS, NO_STORE, Pages, SendCard, WebDeps
from ccshortlink.webguard import SlidingLimiter

MISSES_PER_MINUTE = 20
WRITES_PER_MINUTE = 10
FIGURES_TTL = 30.0  # seconds an agent's live figures are reused across card views


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response, including aiohttp's own errors, gets the same protective headers."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", request.app[DEPS].pages.csp)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers.setdefault("Cache-Control", NO_STORE)


def make_app(*, store: Store, agents: Callable[[], AgentDirectory], web_config: WebConfig,
             clock: Callable[[], float], health: Callable[[], dict[str, str]],
             metrics: Metrics, send_card: SendCard | None, log: Logger,
             zone: tzinfo = UTC) -> web.Application:
    """Build the web application; `zone` dates the reviews left on cards."""
    app = web.Application(client_max_size=64 * 1024)  # a rating form or an API call, no more
    app[DEPS] = WebDeps(
        store=store, agents=agents, web_config=web_config, clock=clock, health=health,
        metrics=metrics, send_card=send_card, log=log, zone=zone, pages=Pages(),
        figures=AgentFiguresCache(store, clock, ttl=FIGURES_TTL, ratings_shown=MAX_REVIEWS),
        misses=SlidingLimiter(MISSES_PER_MINUTE, 60.0, clock),
        writes=SlidingLimiter(WRITES_PER_MINUTE, 60.0, clock),
    )
    app.on_response_prepare.append(_security_headers)
    webapi.add_routes(app)  # fixed paths before the /{code} catch-all
    webcard.add_routes(app)
    return app
