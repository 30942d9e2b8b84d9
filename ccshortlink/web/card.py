"""The customer-facing routes: card page, rating form, call-back taps, vCard, avatar, greeting."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ccshortlink.app.cardcache import AgentFigures
from ccshortlink.app.linkcache import CachedLink
from ccshortlink.core.agents import Agent
from ccshortlink.core.cardview import MAX_COMMENT, build_card, clean_comment, tel_uri
from ccshortlink.core.records import LinkView
from ccshortlink.core.vcard import photo_type, render_vcard, vcard_filename
from ccshortlink.web.agentfiles import AUDIO_TYPES, IMAGE_TYPES, agent_file, file_url
from ccshortlink.web.callback import REFRESH_SECONDS, RETURN_QUERY, CallbackPanel, panel_for
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
from ccshortlink.web.guard import anonymise, client_key
from ccshortlink.web.i18n import strings
from ccshortlink.web.livelink import count_visit, for_live_link, language


def _card_html(deps: WebDeps, link: LinkView, agent: Agent, figures: AgentFigures, lang: str,
               callback: CallbackPanel | None, *, notice: str = "", form_error: str = "",
               stars: int | None = None, comment: str | None = None) -> str:
    return deps.pages.render(
        "card.html", lang=lang, t=strings(lang), code=link.code, agent_lang=agent.language,
        view=build_card(agent, figures.live, figures.ratings, deps.zone),
        company=deps.web_config.company,
        avatar_url=file_url(link.code, agent.avatar, "avatar"),
        greeting_url=file_url(link.code, agent.greeting, "greeting"),
        rating=stars if stars is not None else link.rating,
        comment=comment if comment is not None else link.comment,
        notice=notice, form_error=form_error, max_comment=MAX_COMMENT,
        callback=callback, refresh_seconds=REFRESH_SECONDS,
    )


async def _render_card(request: web.Request, deps: WebDeps, link: LinkView, agent: Agent, *,
                       status: int = 200, notice: str = "", form_error: str = "",
                       stars: int | None = None, comment: str | None = None) -> web.Response:
    """A card with a notice or a form being corrected: rendered for this request only."""
    lang = language(request, agent)
    figures = await deps.figures.get(agent.id)
    panel = await panel_for(deps, link.code, agent, lang)
    return html_response(_card_html(deps, link, agent, figures, lang, panel, notice=notice,
                                    form_error=form_error, stars=stars, comment=comment),
                         status)


# Renderings of one card kept at once: a few languages, each with the call-back states it
# went through lately (beyond this the pages are dropped and rendered again).
MAX_PAGES = 8


async def _plain_card(request: web.Request, deps: WebDeps, entry: CachedLink,
                      agent: Agent) -> tuple[bytes, bool]:
    """The card as everyone sees it, and whether those bytes are gzip: rendered once per
    language, set of live figures and call-back part, and compressed once per rendering."""
    lang = language(request, agent)
    gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    figures = deps.figures.fresh(agent.id)
    # The call-back part is worked out afresh on every open (the agent's presence and the
    # link's latest call-back change by the second) and picks the rendering it belongs to.
    panel = await panel_for(deps, entry.link.code, agent, lang,
                            fresh=request.query.get(RETURN_QUERY) == "1")
    variant = lang if panel is None else f"{lang}~{panel.key}"
    # The compressed page sits beside the plain one under its own key, drawn from the same
    # figures: a new rendering makes both stale together.
    key = f"{variant}+gzip" if gzip else variant
    body = entry.page(key, figures)
    if body is not None:
        return body, gzip
    if len(entry.pages) >= MAX_PAGES:
        entry.pages.clear()
    plain = entry.page(variant, figures)
    if plain is None or figures is None:  # (no figures: no page either)
        figures = await deps.figures.get(agent.id)
        plain = _card_html(deps, entry.link, agent, figures, lang, panel).encode("utf-8")
        entry.pages[variant] = (figures, plain)
    if not gzip:
        return plain, False
    body = gzipped(plain)
    entry.pages[key] = (figures, body)
    return body, True


@for_live_link
async def card(request: web.Request, deps: WebDeps, entry: CachedLink,
               agent: Agent) -> web.Response:
    """GET /{code}: the agent's card."""
    link = entry.link
    # The redirect after a rating is not a new open; it thanks the customer.
    if request.query.get("rated") == "1":
        response = await _render_card(request, deps, link, agent,
                                      notice=strings(language(request, agent))["thanks"])
        deps.log.info("link_opened", code=link.code, agent=agent.id, counted=False,
                      bytes=response.content_length, status=200)
        return response
    # The card's own refresh while a call-back is under way, and the redirect after a tap,
    # are the same visit going on.
    counted = (request.query.get(RETURN_QUERY) != "1"
               and count_visit(request, deps, link.code, "open"))
    body, gzip = await _plain_card(request, deps, entry, agent)
    deps.log.info("link_opened", code=link.code, agent=agent.id, counted=counted,
                  bytes=len(body), status=200)
    return page_response(deps, body, gzip=gzip)


@for_live_link
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
        return message_page(deps, "busy", 429, language(request, agent),
                            **{"Retry-After": str(int(deps.writes.window))})
    try:
        form = await request.post()
    except ValueError:  # a multipart body with no or a wrong boundary: 400, not 500
        deps.log.info("rating_rejected", code=link.code, reason="malformed_form", status=400)
        raise web.HTTPBadRequest(text="the rating form could not be read") from None
    raw_stars, raw_comment = form.get("stars", ""), form.get("comment", "")
    comment = clean_comment(raw_comment if isinstance(raw_comment, str) else "")
    stars = int(raw_stars) if raw_stars in ("1", "2", "3", "4", "5") else None
    t = strings(language(request, agent))
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


@for_live_link
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
        counted = count_visit(request, deps, link.code, "call")
    deps.log.info("call_tap", code=link.code, agent=agent.id, counted=counted,
                  via="ping" if ping else "redirect")
    if ping:
        return web.Response(status=204)
    raise web.HTTPFound(location=tel_uri(agent.phone))


@for_live_link
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
    note = strings(language(request, agent))["vcard_note"].format(id=agent.id)
    text = render_vcard(agent, company=deps.web_config.company, note=note, photo=photo)
    counted = count_visit(request, deps, link.code, "vcard")
    deps.log.info("vcard_served", code=link.code, agent=agent.id, counted=counted,
                  photo=photo is not None)
    response = web.Response(text=text, content_type="text/vcard", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{vcard_filename(agent)}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@for_live_link
async def avatar(request: web.Request, deps: WebDeps, entry: CachedLink,
                 agent: Agent) -> web.StreamResponse:
    """GET /{code}/avatar: the agent's photo (the page falls back to initials without one)."""
    return agent_file(agent.avatar, IMAGE_TYPES)


@for_live_link
async def greeting(request: web.Request, deps: WebDeps, entry: CachedLink,
                   agent: Agent) -> web.StreamResponse:
    """GET /{code}/greeting: the agent's recorded greeting, played by <audio>."""
    return agent_file(agent.greeting, AUDIO_TYPES)


async def root(request: web.Request) -> web.Response:
    """GET /: someone trimmed the link; the friendly 404 (not counted as a miss)."""
    return message_page(request.app[DEPS], "missing", 404, language(request, None))


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
