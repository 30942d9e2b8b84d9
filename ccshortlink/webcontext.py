"""What the web handlers share: injected dependencies, templates, CSP, page rendering."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from ccshortlink.agents import AgentDirectory
from ccshortlink.cardcache import AgentFiguresCache
from ccshortlink.cardview import tel_uri
from ccshortlink.config import WebConfig
from ccshortlink.i18n import strings
from ccshortlink.logs import Logger
from ccshortlink.metrics import Metrics
from ccshortlink.store import Store
from ccshortlink.webguard import SlidingLimiter, client_address

SendCard = Callable[[str, str], Awaitable[dict[str, Any]]]

HTML = "text/html"
NO_STORE = "private, no-store"


def _minify_css(css: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    return re.sub(r"\s*\n\s*", "", css).strip()


class Pages:
    """jinja2 (autoescape on) plus the one inline stylesheet and the CSP that admits it."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("ccshortlink", "templates"),
            autoescape=True, trim_blocks=True, lstrip_blocks=True,
            undefined=jinja2.StrictUndefined, auto_reload=False,
        )
        css = _minify_css((resources.files("ccshortlink") / "templates" / "card.css")
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

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(css=self.css, **context)


@dataclass
class WebDeps:
    """Everything injected into the web layer by the daemon (or a test)."""

    store: Store
    agents: Callable[[], AgentDirectory]
    web_config: WebConfig
    clock: Callable[[], float]
    health: Callable[[], dict[str, str]]
    metrics: Metrics
    send_card: SendCard | None
    log: Logger
    zone: tzinfo
    pages: Pages
    figures: AgentFiguresCache  # live stats and recent ratings per agent
    misses: SlidingLimiter  # unknown codes per client: blunts enumeration
    writes: SlidingLimiter  # ratings and call taps per client


DEPS = web.AppKey("ccshortlink_web", WebDeps)

_MESSAGES = {
    # kind: (title key, body key, symbol)
    "missing": ("missing_title", "missing_body", "?"),
    "expired": ("expired_title", "expired_body", "clock"),
    "busy": ("busy_title", "busy_body", "…"),
}


def visitor(request: web.Request) -> str | None:
    """The client's address, through a reverse proxy on this host if there is one."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For", ""))


def html_response(body: str, status: int = 200, **headers: str) -> web.Response:
    response = web.Response(text=body, status=status, content_type=HTML, charset="utf-8")
    response.headers["Cache-Control"] = NO_STORE
    response.headers.update(headers)
    return response


def message_page(deps: WebDeps, kind: str, status: int, lang: str, **headers: str) -> web.Response:
    """The friendly 404 / 410 / 429 page; the 410 offers the hotline as a tel: button."""
    title_key, body_key, symbol = _MESSAGES[kind]
    t = strings(lang)
    hotline = deps.web_config.hotline if kind == "expired" else ""
    body = deps.pages.render(
        "message.html", lang=lang, t=t, heading=t[title_key], body=t[body_key], symbol=symbol,
        hotline=hotline, hotline_tel=tel_uri(hotline) if hotline else "",
        company=deps.web_config.company,
    )
    return html_response(body, status, **headers)
