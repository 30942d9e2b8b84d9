"""What the web handlers share: injected dependencies, templates, CSP, page rendering."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from importlib import resources
from typing import Any, Protocol

import jinja2
from aiohttp import web
from markupsafe import Markup
from multidict import CIMultiDict, CIMultiDictProxy

from ccshortlink.app.cardcache import AgentFiguresCache
from ccshortlink.app.linkcache import LinkCache
from ccshortlink.app.ports import (
    AgentFiguresStore,
    CallbackDesk,
    Faults,
    LinkAdminStore,
    LinkPages,
    VisitStore,
)
from ccshortlink.app.visits import VisitBuffer
from ccshortlink.config.settings import WebConfig
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.cardview import tel_uri
from ccshortlink.ops.logs import Logger
from ccshortlink.ops.metrics import VISIT_KINDS, Metrics
from ccshortlink.web.encoding import VARY
from ccshortlink.web.guard import SlidingLimiter, client_address, post_refusal
from ccshortlink.web.i18n import strings
from ccshortlink.web.scrape import GaugeSource, StoreGauges
from ccshortlink.web.settled import SettledCallbacks

SendCard = Callable[[str, str], Awaitable[dict[str, Any]]]


class WebStore(LinkPages, AgentFiguresStore, VisitStore, LinkAdminStore, Faults, GaugeSource,
               Protocol):
    """What the pages need of the store; the daemon hands in the SQLite one (store.Store)."""

    async def ping(self) -> bool: ...
    async def sms_status_counts(self) -> dict[str, int]: ...
    async def rate_link(self, code: str, stars: int, comment: str, now: float) -> None: ...

HTML = "text/html"
NO_STORE = "private, no-store"


def _minify_css(css: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    return re.sub(r"\s*\n\s*", "", css).strip()


class Pages:
    """jinja2 (autoescape on) plus the one inline stylesheet and the CSP that admits it."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("ccshortlink.web", "templates"),
            autoescape=True, trim_blocks=True, lstrip_blocks=True,
            undefined=jinja2.StrictUndefined, auto_reload=False,
        )
        css = _minify_css((resources.files("ccshortlink.web") / "templates" / "card.css")
                          .read_text(encoding="utf-8"))
        self.css = Markup(css)  # our own file, never user input
        digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
        # A hash instead of 'unsafe-inline': an injected <style> or style="" would not apply.
        # connect-src admits the hyperlink-auditing ping that counts call-back taps.
        self.csp = (
            "default-src 'none'; "
            f"style-src 'sha256-{digest}'; "
            "img-src 'self' data:; media-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        # Every response gets these (web.py adds whichever a handler did not set).
        self.protective_headers: tuple[tuple[str, str], ...] = (
            ("Content-Security-Policy", self.csp),
            ("X-Content-Type-Options", "nosniff"),
            # Our own pages' requests carry their origin (the rating form is checked by
            # it, webguard.post_refusal); no other site ever sees the link's code.
            ("Referrer-Policy", "same-origin"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Cache-Control", NO_STORE),
        )
        # A card page's full header set, built once and copied into each response; the
        # second for the same page gzip-compressed (webencoding).
        page = [("Content-Type", f"{HTML}; charset=utf-8"), ("Vary", VARY),
                *self.protective_headers]
        self.page_headers = CIMultiDictProxy(CIMultiDict(page))
        self.gzip_page_headers = CIMultiDictProxy(CIMultiDict(
            [*page, ("Content-Encoding", "gzip")]))
        # Compiled now, not by the first customer to open a card.
        self._templates = {name: self.env.get_template(name)
                           for name in ("card.html", "message.html")}

    def render(self, name: str, **context: Any) -> str:
        template = self._templates.get(name) or self.env.get_template(name)
        return template.render(css=self.css, **context)


@dataclass
class WebDeps:
    """Everything injected into the web layer by the daemon (or a test)."""

    store: WebStore
    agents: Callable[[], AgentDirectory]
    web_config: WebConfig
    clock: Callable[[], float]
    health: Callable[[], Mapping[str, object]]
    metrics: Metrics
    send_card: SendCard | None
    log: Logger
    zone: tzinfo
    pages: Pages
    figures: AgentFiguresCache  # live stats and recent ratings per agent
    links: LinkCache  # live links by code, with their rendered cards
    visits: VisitBuffer  # counted visits on their way to the store
    misses: SlidingLimiter  # unknown codes per client: blunts enumeration
    writes: SlidingLimiter  # ratings and call taps per client
    default_region: str = "CN"  # numbers a CRM gives without a country code ([policy])
    callbacks: CallbackDesk | None = None  # [callback] enabled: the button and the lookup
    # Visits counted since the last /metrics scrape: a dict increment per open instead of
    # a locked prometheus counter; `publish_visits` moves them over when anyone looks.
    unpublished_visits: dict[str, int] = field(init=False)
    gauges: StoreGauges = field(init=False)  # what /metrics reads from the store
    settled: SettledCallbacks = field(init=False)  # links with no call-back under way

    def __post_init__(self) -> None:
        self.unpublished_visits = dict.fromkeys(VISIT_KINDS, 0)
        self.gauges = StoreGauges(self.store, self.metrics, self.clock)
        self.settled = SettledCallbacks(self.clock)

    def publish_visits(self) -> None:
        """Add the visits counted since the last call to ccshortlink_visits_total."""
        for kind, count in self.unpublished_visits.items():
            if count:
                self.metrics.visits.labels(kind=kind).inc(count)
                self.unpublished_visits[kind] = 0


DEPS = web.AppKey("ccshortlink_web", WebDeps)

_MESSAGES = {
    # kind: (title key, body key, symbol)
    "missing": ("missing_title", "missing_body", "?"),
    "expired": ("expired_title", "expired_body", "clock"),
    # Revoked by an operator: said plainly, without telling a stranger why.
    "revoked": ("revoked_title", "revoked_body", "clock"),
    "busy": ("busy_title", "busy_body", "…"),
}


def visitor(request: web.Request) -> str | None:
    """The client's address, through the reverse proxies `[web] trusted_proxies` lists."""
    # Every X-Forwarded-For line, in order: a visitor's own line must not hide the proxy's.
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", ()))
    trusted = request.app[DEPS].web_config.trusted_proxies
    return client_address(request.remote, forwarded, trusted)


def foreign_post(request: web.Request) -> str:
    """Why this POST is not taken as coming from our own page, "" when it is
    (see webguard.post_refusal)."""
    headers = request.headers
    return post_refusal(headers.get("Sec-Fetch-Site", ""), headers.get("Origin"),
                        headers.get("Referer"), request.app[DEPS].web_config.public_url,
                        request.host)


def page_response(deps: WebDeps, body: bytes, *, gzip: bool = False) -> web.Response:
    """A 200 HTML page from bytes already rendered (and compressed when `gzip`), with every
    header already in place."""
    pages = deps.pages
    return web.Response(body=body, headers=pages.gzip_page_headers if gzip else pages.page_headers)


def html_response(body: str, status: int = 200, **headers: str) -> web.Response:
    response = web.Response(text=body, status=status, content_type=HTML, charset="utf-8")
    response.headers["Cache-Control"] = NO_STORE
    response.headers.update(headers)
    return response


def message_page(deps: WebDeps, kind: str, status: int, lang: str, **headers: str) -> web.Response:
    """The friendly 404 / 410 / 429 page; the 410 offers the hotline as a tel: button."""
    title_key, body_key, symbol = _MESSAGES[kind]
    t = strings(lang)
    hotline = deps.web_config.hotline if kind in ("expired", "revoked") else ""
    body = deps.pages.render(
        "message.html", lang=lang, t=t, heading=t[title_key], body=t[body_key], symbol=symbol,
        hotline=hotline, hotline_tel=tel_uri(hotline) if hotline else "",
        company=deps.web_config.company,
    )
    return html_response(body, status, **headers)
