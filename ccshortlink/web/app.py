"""The aiohttp application: wires the card and API routes to their injected dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, tzinfo

from aiohttp import web

from ccshortlink.app.cardcache import AgentFiguresCache
from ccshortlink.app.linkcache import LinkCache
from ccshortlink.app.ports import CallbackDesk
from ccshortlink.app.visits import VisitBuffer
from ccshortlink.config.settings import WebConfig
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.cardview import MAX_REVIEWS
from ccshortlink.ops.logs import Logger
from ccshortlink.ops.metrics import Metrics
from ccshortlink.web import api as webapi
from ccshortlink.web import callback as webcallback
from ccshortlink.web import card as webcard
from ccshortlink.web import linkapi, preferred
from ccshortlink.web.context import DEPS, Pages, SendCard, WebDeps, WebStore
from ccshortlink.web.encoding import negotiate
from ccshortlink.web.guard import SlidingLimiter, unusable_proxies

MISSES_PER_MINUTE = 20
WRITES_PER_MINUTE = 10
FIGURES_TTL = 30.0  # seconds an agent's live figures are reused across card views
LINK_TTL = 5.0  # seconds a live link (and its rendered card) is reused; expiry stays exact


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response, including aiohttp's own errors, gets the same protective headers."""
    headers = response.headers
    if "Content-Security-Policy" in headers:
        return  # a card page: built with the whole set (webcontext.page_response)
    for name, value in request.app[DEPS].pages.protective_headers:
        headers.setdefault(name, value)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Visits are written in batches while the app runs, and all of them when it stops
    (AppRunner.cleanup(), before the daemon closes the store)."""
    deps = app[DEPS]
    # Logging is configured by now: resolve a lazy logger once rather than on every line.
    deps.log = deps.log.bind()
    deps.visits.start()
    yield
    await deps.visits.stop()


def make_app(*, store: WebStore, agents: Callable[[], AgentDirectory], web_config: WebConfig,
             clock: Callable[[], float], health: Callable[[], Mapping[str, object]],
             metrics: Metrics, send_card: SendCard | None, log: Logger,
             zone: tzinfo = UTC, default_region: str = "CN",
             callbacks: CallbackDesk | None = None) -> web.Application:
    """Build the web application; `zone` dates the reviews left on cards.

    Visits are counted in memory and written by a task the app starts and stops with
    itself (see VisitBuffer): a crash can lose at most the last ~0.1 s of visit counts.
    """
    # client_max_size: a rating form or an API call, no more
    app = web.Application(client_max_size=64 * 1024, middlewares=[negotiate])
    app[DEPS] = WebDeps(
        store=store, agents=agents, web_config=web_config, clock=clock, health=health,
        metrics=metrics, send_card=send_card, log=log, zone=zone, pages=Pages(),
        figures=AgentFiguresCache(store, clock, ttl=FIGURES_TTL, ratings_shown=MAX_REVIEWS),
        links=LinkCache(store, agents, clock, ttl=LINK_TTL),
        visits=VisitBuffer(store, log),
        misses=SlidingLimiter(MISSES_PER_MINUTE, 60.0, clock),
        writes=SlidingLimiter(WRITES_PER_MINUTE, 60.0, clock),
        default_region=default_region, callbacks=callbacks,
    )
    for entry in unusable_proxies(web_config.trusted_proxies):  # config checks say it first
        log.warning("trusted_proxy_ignored", entry=entry, reason="not an address or network")
    app.on_response_prepare.append(_security_headers)
    app.cleanup_ctx.append(_lifecycle)
    webapi.add_routes(app)  # fixed paths before the /{code} catch-all
    linkapi.add_routes(app)
    preferred.add_routes(app)
    webcallback.add_routes(app)
    webcard.add_routes(app)
    return app
