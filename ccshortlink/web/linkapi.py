"""The links API for CRMs, behind the send API's token: list, look up, revoke, extend."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ccshortlink.core.linkadmin import (
    LIST_LIMIT,
    MAX_EXTEND_DAYS,
    MAX_LIST_LIMIT,
    ChangedBy,
    LinkEntry,
    days_problem,
    link_json,
)
from ccshortlink.core.policy import CustomerNumber, PolicyConfig, normalise_number
from ccshortlink.core.privacy import mask_number
from ccshortlink.web.api import refusal
from ccshortlink.web.body import BodyProblem, parse_json, read_capped
from ccshortlink.web.context import DEPS, WebDeps

NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=NO_STORE)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _api(handler: Handler) -> Handler:
    """Token checked first; a database fault is a 503 the CRM may retry, not a 500."""
    @functools.wraps(handler)
    async def route(request: web.Request) -> web.Response:
        if (denied := refusal(request)) is not None:
            return denied
        deps = request.app[DEPS]
        try:
            return await handler(request)
        except Exception as exc:
            if not deps.store.is_fault(exc):
                raise
            deps.log.error("api_links_failed", path=request.path[:80], error=type(exc).__name__)
            response = _error(503, "database unavailable, try again")
            response.headers["Retry-After"] = "10"
            return response

    return route


def _link(deps: WebDeps, entry: LinkEntry, *, full_number: bool = False) -> dict[str, Any]:
    return link_json(entry, deps.zone, deps.web_config.public_url, full_number=full_number)


def customer_e164(deps: WebDeps, raw: str) -> str | None:
    """The number as links store it. A "+" sent unencoded in a query arrives as a space;
    normalise_number reads "8613800138000" as +86… all the same."""
    policy = PolicyConfig(default_region=deps.default_region, mobile_only=False)
    found = normalise_number(raw[:64], policy)
    return found.e164 if isinstance(found, CustomerNumber) else None


@_api
async def list_links(request: web.Request) -> web.Response:
    """GET /api/v1/links?number=…&agent=…[&all=1][&limit=N]: live links, newest first.

    The customer's number comes back in full only when the request named it.
    """
    deps = request.app[DEPS]
    query = request.query
    number = None
    if "number" in query:
        number = customer_e164(deps, query["number"])
        if number is None:
            return _error(400, "number is not a phone number")
    try:
        limit = int(query.get("limit", str(LIST_LIMIT)))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST_LIMIT:
        return _error(400, f"limit must be 1 to {MAX_LIST_LIMIT}")
    agent = query.get("agent", "").strip()[:64] or None
    entries = await deps.store.find_links(
        now=deps.clock(), agent_id=agent, customer_number=number,
        include_all=query.get("all", "") in ("1", "true"), limit=limit)
    deps.log.info("api_links_listed", agent=agent or "",
                  number=mask_number(number) if number else "", links=len(entries), status=200)
    return web.json_response(
        {"links": [_link(deps, e, full_number=number is not None) for e in entries]},
        headers=NO_STORE)


@_api
async def show_link(request: web.Request) -> web.Response:
    """GET /api/v1/links/{code}: one link, its changes, visits and SMS state."""
    deps = request.app[DEPS]
    entry = await deps.store.link_entry(request.match_info["code"], deps.clock())
    if entry is None:
        return _error(404, "no such link")
    return web.json_response(_link(deps, entry), headers=NO_STORE)


@_api
async def revoke_link(request: web.Request) -> web.Response:
    """DELETE /api/v1/links/{code}: the link answers 410 from the next request on.

    Idempotent: revoking a revoked link is a 200 with `"revoked_now": false`.
    """
    deps = request.app[DEPS]
    code = request.match_info["code"]
    revoked = await deps.store.revoke_code(code, by=ChangedBy.API, now=deps.clock())
    if revoked is None:
        return _error(404, "no such link")
    deps.links.forget(code)  # this process stops serving it now, not in LINK_TTL
    entry = revoked.entry
    deps.log.info("api_link_revoked", code=code, agent=entry.agent_id,
                  revoked_now=revoked.revoked_now, sms_cancelled=revoked.sms_cancelled,
                  status=200)
    return web.json_response({**_link(deps, entry), "revoked_now": revoked.revoked_now,
                              "sms_cancelled": revoked.sms_cancelled}, headers=NO_STORE)


@_api
async def extend_link(request: web.Request) -> web.Response:
    """POST /api/v1/links/{code}/extend {"days": D}: D more days (409 for a revoked link).

    POST, not PATCH: it adds to the expiry, so sending it twice extends twice.
    """
    deps = request.app[DEPS]
    try:
        payload: Any = parse_json(await read_capped(request))
    except BodyProblem as problem:
        return _error(problem.status, problem.message)
    days = payload.get("days") if isinstance(payload, dict) else None
    if not isinstance(days, int) or isinstance(days, bool) or days_problem(days):
        return _error(400, f'body must be {{"days": D}}, D a whole number from 1 to'
                           f' {MAX_EXTEND_DAYS}')
    code = request.match_info["code"]
    entry = await deps.store.extend_code(code, days, by=ChangedBy.API, now=deps.clock())
    if entry is None:
        return _error(404, "no such link")
    if entry.revoked_at is not None:
        return _error(409, "the link is revoked; a revoked link cannot be extended")
    deps.links.forget(code)
    deps.log.info("api_link_extended", code=code, agent=entry.agent_id, days=days, status=200)
    return web.json_response(_link(deps, entry), headers=NO_STORE)


def add_routes(app: web.Application) -> None:
    """Fixed /api/v1/links paths: added before the card's /{code} catch-all."""
    app.router.add_get("/api/v1/links", list_links)
    app.router.add_get("/api/v1/links/{code}", show_link)
    app.router.add_delete("/api/v1/links/{code}", revoke_link)
    app.router.add_post("/api/v1/links/{code}/extend", extend_link)
