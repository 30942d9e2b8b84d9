"""The customer-facing routes: card page, rating form, call-back taps, vCard, avatar, greeting."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache

from aiohttp import web

from ccshortlink.app.cardcache import AgentFigures
from ccshortlink.app.linkcache import CachedLink
from ccshortlink.core.agents import Agent
from ccshortlink.core.cardview import MAX_COMMENT, build_card, clean_comment, tel_uri
from ccshortlink.core.privacy import clip
from ccshortlink.core.records import LinkView
from ccshortlink.core.vcard import photo_type, render_vcard, vcard_filename
from ccshortlink.core.vocab import LinkStatus
from ccshortlink.web.agentfiles import AUDIO_TYPES, IMAGE_TYPES, agent_file, file_url
from ccshortlink.web.context import (
    DEPS,
    WebDeps,
    foreign_post,
    html_response,
    message_page,
    page_response,
    visitor,
)
from ccshortlink.web.encoding import accepts_gzip, gzipped
from ccshortlink.web.guard import anonymise, client_key, is_bot
from ccshortlink.web.i18n import choose_language, strings

# Wider than the minted alphabet on purpose: anything else is a miss without a query.
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Memoised: without an agent language, every open would parse Accept-Language again.
_choose_language = lru_cache(maxsize=1024)(choose_language)


def _language(request: web.Request, agent: Agent | None) -> str:
    return _choose_language(agent.language if agent else "",
                            request.headers.get("Accept-Language", ""))


async def _resolve(request: web.Request) -> tuple[CachedLink, Agent] | web.Response:
    """The live link and its agent, or the 404 / 410 / 429 page to answer instead."""
    deps = request.app[DEPS]
    key = client_key(visitor(request))
    code = request.match_info["code"]
    if deps.misses.blocked(key):
        return message_page(deps, "busy", 429, _language(request, None),
                            **{"Retry-After": str(int(deps.misses.window))})
    entry = await deps.links.lookup(code) if _CODE.fullmatch(code) else None
    if entry is None:
        deps.misses.hit(key)
        if deps.misses.blocked(key):  # logged once, when the client crosses the line
            deps.log.warning("client_rate_limited", client=anonymise(visitor(request)),
                             reason="misses", limit=deps.misses.limit)
        deps.log.info("card_missing", path=clip(request.path, 80), status=404)
        return message_page(deps, "missing", 404, _language(request, None))
    link, agent = entry.link, entry.agent
    if link.status != LinkStatus.LIVE or agent is None:
        deps.log.info("card_gone", code=code, agent=link.agent_id, link_status=link.status,
                      agent_known=agent is not None, status=410)
        kind = "revoked" if link.status == LinkStatus.REVOKED else "expired"
        return message_page(deps, kind, 410, _language(request, agent))
    return entry, agent


LinkHandler = Callable[[web.Request, WebDeps, CachedLink, Agent], Awaitable[web.StreamResponse]]


def _for_live_link(handler: LinkHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
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


def _count_visit(request: web.Request, deps: WebDeps, code: str, kind: str) -> bool:
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


def _card_html(deps: WebDeps, link: LinkView, agent: Agent, figures: AgentFigures, lang: str,
               *, notice: str = "", form_error: str = "", stars: int | None = None,
               comment: str | None = None) -> str:
    return deps.pages.render(
        "card.html", lang=lang, t=strings(lang), code=link.code, agent_lang=agent.language,
        view=build_card(agent, figures.live, figures.ratings, deps.zone),
        company=deps.web_config.company,
        avatar_url=file_url(link.code, agent.avatar, "avatar"),
        greeting_url=file_url(link.code, agent.greeting, "greeting"),
        rating=stars if stars is not None else link.rating,
        comment=comment if comment is not None else link.comment,
        notice=notice, form_error=form_error, max_comment=MAX_COMMENT,
    )


async def _render_card(request: web.Request, deps: WebDeps, link: LinkView, agent: Agent, *,
                       status: int = 200, notice: str = "", form_error: str = "",
                       stars: int | None = None, comment: str | None = None) -> web.Response:
    """A card with a notice or a form being corrected: rendered for this request only."""
    lang = _language(request, agent)
    figures = await deps.figures.get(agent.id)
    return html_response(_card_html(deps, link, agent, figures, lang, notice=notice,
                                    form_error=form_error, stars=stars, comment=comment),
                         status)


async def _plain_card(request: web.Request, deps: WebDeps, entry: CachedLink,
                      agent: Agent) -> tuple[bytes, bool]:
    """The card as everyone sees it, and whether those bytes are gzip: rendered once per
    language and set of live figures, and compressed once per rendering."""
    lang = _language(request, agent)
    gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    figures = deps.figures.fresh(agent.id)
    # The compressed page sits beside the plain one under its own key, drawn from the same
    # figures: a new rendering makes both stale together.
    key = f"{lang}+gzip" if gzip else lang
    body = entry.page(key, figures)
    if body is not None:
        return body, gzip
    plain = entry.page(lang, figures)
    if plain is None or figures is None:  # (no figures: no page either)
        figures = await deps.figures.get(agent.id)
        plain = _card_html(deps, entry.link, agent, figures, lang).encode("utf-8")
        entry.pages[lang] = (figures, plain)
    if not gzip:
        return plain, False
    body = gzipped(plain)
    entry.pages[key] = (figures, body)
    return body, True


@_for_live_link
async def card(request: web.Request, deps: WebDeps, entry: CachedLink,
               agent: Agent) -> web.Response:
    """GET /{code}: the agent's card."""
    link = entry.link
    # The redirect after a rating is not a new open; it thanks the customer.
    if request.query.get("rated") == "1":
        response = await _render_card(request, deps, link, agent,
                                      notice=strings(_language(request, agent))["thanks"])
        deps.log.info("link_opened", code=link.code, agent=agent.id, counted=False,
                      bytes=response.content_length, status=200)
        return response
    counted = _count_visit(request, deps, link.code, "open")
    body, gzip = await _plain_card(request, deps, entry, agent)
    deps.log.info("link_opened", code=link.code, agent=agent.id, counted=counted,
                  bytes=len(body), status=200)
    return page_response(deps, body, gzip=gzip)


@_for_live_link
async def rate(request: web.Request, deps: WebDeps, entry: CachedLink,
               agent: Agent) -> web.StreamResponse:
    """POST /{code}/rate: 1-5 stars and an optional comment, one per link, editable."""
    link = entry.link
    # The link is the credential; this only stops other sites posting with a visitor's browser.
    if refusal := foreign_post(request):
        deps.log.info("rating_rejected", code=link.code, reason=refusal, status=403)
        raise web.HTTPForbidden(text="only the card's own page can post a rating")
    if not deps.writes.allow(client_key(visitor(request))):
        deps.log.warning("client_rate_limited", client=anonymise(visitor(request)),
                         reason="ratings")
        return message_page(deps, "busy", 429, _language(request, agent),
                            **{"Retry-After": str(int(deps.writes.window))})
    try:
        form = await request.post()
    except ValueError:  # a multipart body with no or a wrong boundary: 400, not 500
        deps.log.info("rating_rejected", code=link.code, reason="malformed_form", status=400)
        raise web.HTTPBadRequest(text="the rating form could not be read") from None
    raw_stars, raw_comment = form.get("stars", ""), form.get("comment", "")
    comment = clean_comment(raw_comment if isinstance(raw_comment, str) else "")
    stars = int(raw_stars) if raw_stars in ("1", "2", "3", "4", "5") else None
    t = strings(_language(request, agent))
    error = (t["error_stars"] if stars is None
             else t["error_comment"] if len(comment) > MAX_COMMENT else "")
    if stars is None or error:
        deps.log.info("rating_rejected", code=link.code, reason="invalid_form", status=400)
        return await _render_card(request, deps, link, agent, status=400, form_error=error,
                                  stars=stars, comment=comment)
    await deps.store.rate_link(link.code, stars, comment, deps.clock())
    deps.links.forget(link.code)
    deps.figures.forget(agent.id)
    deps.metrics.ratings.inc()
    deps.log.info("rating_saved", code=link.code, agent=agent.id, stars=stars,
                  commented=bool(comment), edit=link.rating is not None, status=303)
    # Post/redirect/get, relative so it works behind a path prefix: /{code}/rate -> /{code}
    raise web.HTTPSeeOther(location=f"../{link.code}?rated=1#rate")


@_for_live_link
async def call(request: web.Request, deps: WebDeps, entry: CachedLink,
               agent: Agent) -> web.StreamResponse:
    """GET or POST /{code}/call: count a call-back tap.

    POST is the hyperlink-auditing ping sent by the card's tel: button (answered 204);
    GET redirects to the agent's tel: URI, for links that should dial straight away.
    """
    link = entry.link
    ping = request.method == "POST"
    # A ping from another site is refused like any foreign POST; the customer's call itself
    # never depends on it (the button dials tel: directly).
    if ping and (refusal := foreign_post(request)):
        deps.log.info("call_tap_rejected", code=link.code, reason=refusal, status=403)
        raise web.HTTPForbidden(text="only the card's own page can count a call-back tap")
    # A GET is a navigation: counted unless the browser says another site embedded it.
    embedded = not ping and request.headers.get("Sec-Fetch-Site", "").strip().lower() in (
        "cross-site", "same-site")
    counted = False
    # Over the limit the tap is not recorded, but the customer is never kept from calling.
    if not embedded and deps.writes.allow(client_key(visitor(request))):
        counted = _count_visit(request, deps, link.code, "call")
    deps.log.info("call_tap", code=link.code, agent=agent.id, counted=counted,
                  via="ping" if ping else "redirect")
    if ping:
        return web.Response(status=204)
    raise web.HTTPFound(location=tel_uri(agent.phone))


@_for_live_link
async def vcard(request: web.Request, deps: WebDeps, entry: CachedLink,
                agent: Agent) -> web.Response:
    """GET /{code}/vcard: the agent as a contact to save."""
    link = entry.link
    photo = None
    if agent.avatar is not None and agent.avatar.suffix.lower() in (".png", ".jpg", ".jpeg"):
        try:
            photo = await asyncio.to_thread(agent.avatar.read_bytes)
        except OSError:
            photo = None
        if photo is not None and photo_type(photo) is None:
            photo = None
    note = strings(_language(request, agent))["vcard_note"].format(id=agent.id)
    text = render_vcard(agent, company=deps.web_config.company, note=note, photo=photo)
    counted = _count_visit(request, deps, link.code, "vcard")
    deps.log.info("vcard_served", code=link.code, agent=agent.id, counted=counted,
                  photo=photo is not None)
    response = web.Response(text=text, content_type="text/vcard", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{vcard_filename(agent)}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@_for_live_link
async def avatar(request: web.Request, deps: WebDeps, entry: CachedLink,
                 agent: Agent) -> web.StreamResponse:
    """GET /{code}/avatar: the agent's photo (the page falls back to initials without one)."""
    return agent_file(agent.avatar, IMAGE_TYPES)


@_for_live_link
async def greeting(request: web.Request, deps: WebDeps, entry: CachedLink,
                   agent: Agent) -> web.StreamResponse:
    """GET /{code}/greeting: the agent's recorded greeting, played by <audio>."""
    return agent_file(agent.greeting, AUDIO_TYPES)


async def root(request: web.Request) -> web.Response:
    """GET /: someone trimmed the link; the friendly 404 (not counted as a miss)."""
    return message_page(request.app[DEPS], "missing", 404, _language(request, None))


def add_routes(app: web.Application) -> None:
    """Register the card routes; fixed paths (health, metrics, API) must be added first."""
    app.router.add_get("/", root)
    app.router.add_get("/{code}", card)
    app.router.add_post("/{code}/rate", rate)
    app.router.add_get("/{code}/call", call)
    app.router.add_post("/{code}/call", call)
    app.router.add_get("/{code}/vcard", vcard)
    app.router.add_get("/{code}/avatar", avatar)
    app.router.add_get("/{code}/greeting", greeting)
