"""What every /{code}/... route shares: the live link and its agent, the visitor's language,
and counting a visit."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache

from aiohttp import web

from ccshortlink.app.linkcache import CachedLink
from ccshortlink.core.agents import Agent
from ccshortlink.core.privacy import clip
from ccshortlink.core.vocab import LinkStatus
from ccshortlink.web.context import DEPS, WebDeps, message_page, visitor
from ccshortlink.web.guard import anonymise, client_key, is_bot
from ccshortlink.web.i18n import choose_language

# Wider than the minted alphabet on purpose: anything else is a miss without a query.
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Memoised: without an agent language, every open would parse Accept-Language again.
_choose_language = lru_cache(maxsize=1024)(choose_language)


def language(request: web.Request, agent: Agent | None) -> str:
    """The language of the page's own labels for this visitor (web.i18n.choose_language)."""
    return _choose_language(agent.language if agent else "",
                            request.headers.get("Accept-Language", ""))


async def _resolve(request: web.Request) -> tuple[CachedLink, Agent] | web.Response:
    """The live link and its agent, or the 404 / 410 / 429 page to answer instead."""
    deps = request.app[DEPS]
    key = client_key(visitor(request))
    code = request.match_info["code"]
    if deps.misses.blocked(key):
        return message_page(deps, "busy", 429, language(request, None),
                            **{"Retry-After": str(int(deps.misses.window))})
    entry = await deps.links.lookup(code) if _CODE.fullmatch(code) else None
    if entry is None:
        deps.misses.hit(key)
        if deps.misses.blocked(key):  # logged once, when the client crosses the line
            deps.log.warning("client_rate_limited", client=anonymise(visitor(request)),
                             reason="misses", limit=deps.misses.limit)
        deps.log.info("card_missing", path=clip(request.path, 80), status=404)
        return message_page(deps, "missing", 404, language(request, None))
    link, agent = entry.link, entry.agent
    if link.status != LinkStatus.LIVE or agent is None:
        deps.log.info("card_gone", code=code, agent=link.agent_id, link_status=link.status,
                      agent_known=agent is not None, status=410)
        kind = "revoked" if link.status == LinkStatus.REVOKED else "expired"
        return message_page(deps, kind, 410, language(request, agent))
    return entry, agent


LinkHandler = Callable[[web.Request, WebDeps, CachedLink, Agent], Awaitable[web.StreamResponse]]


def for_live_link(handler: LinkHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A route for /{code}/...: the handler gets the live link and its agent, or the visitor
    gets the 404 / 410 / 429 page without the handler being called."""
    @functools.wraps(handler)
    async def route(request: web.Request) -> web.StreamResponse:
        resolved = await _resolve(request)
        if isinstance(resolved, web.Response):
            return resolved
        entry, agent = resolved
        return await handler(request, request.app[DEPS], entry, agent)

    return route


def count_visit(request: web.Request, deps: WebDeps, code: str, kind: str) -> bool:
    """Count a visit unless it is a HEAD, a prefetch or a link-preview bot.

    Only queued here: deps.visits writes it with others in one transaction shortly after.
    """
    headers = request.headers
    user_agent = headers.get("User-Agent", "")
    if request.method == "HEAD" or is_bot(user_agent):
        return False
    purpose = headers.get("Sec-Purpose", "") + headers.get("Purpose", "")
    if purpose and "prefetch" in purpose.lower():
        return False
    deps.visits.add(code, kind, anonymise(visitor(request)), user_agent, deps.clock())
    deps.unpublished_visits[kind] += 1
    return True
