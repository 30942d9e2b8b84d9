"""GET /api/v1/preferred-agent: which agent a returning caller should reach (the PBX asks)."""

from __future__ import annotations

from aiohttp import web

from ccshortlink.core.privacy import anonymise_number, ip_address_of, mask_number
from ccshortlink.web.api import refusal
from ccshortlink.web.context import DEPS, visitor
from ccshortlink.web.linkapi import customer_e164

NO_STORE = {"Cache-Control": "no-store"}


def _answer(as_text: bool, status: int, payload: dict[str, object]) -> web.Response:
    if as_text:
        # The dialplan's CURL() reads the body whatever the status: anything but an
        # extension (or nothing) would end up in its Dial().
        extension = payload.get("extension")
        return web.Response(text=extension if isinstance(extension, str) else "",
                            status=status, headers=NO_STORE)
    return web.json_response(payload, status=status, headers=NO_STORE)


def _on_this_box(request: web.Request) -> bool:
    """The caller is this host itself (Asterisk's CURL() beside the daemon), as seen through
    `[web] trusted_proxies`: a proxy on loopback does not make its clients local."""
    address = ip_address_of(visitor(request))
    return address is not None and address.is_loopback


async def preferred_agent(request: web.Request) -> web.Response:
    """GET /api/v1/preferred-agent?number=NUMBER[&format=text]: the agent of the number's
    latest live link, for the PBX to ring first; from loopback, or with the API token."""
    deps = request.app[DEPS]
    desk = deps.callbacks
    if desk is None:
        raise web.HTTPNotFound()  # [callback] is off: like any unknown path
    if not _on_this_box(request) and (denied := refusal(request)) is not None:
        return denied
    as_text = request.query.get("format") == "text"
    raw = request.query.get("number", "").strip()
    number = customer_e164(deps, raw) if raw else None
    if number is None:
        deps.log.info("preferred_agent_lookup", number=anonymise_number(raw[:64]), found=False,
                      reason="missing" if not raw else "not_a_number", status=400)
        return _answer(as_text, 400, {"error": "number must be the caller's phone number"})
    try:
        found = await desk.preferred_agent(number)
    except Exception as exc:  # the call must still reach the queue: answer, never hang
        deps.log.error("preferred_agent_failed", number=mask_number(number),
                       error=type(exc).__name__)
        return _answer(as_text, 503, {"error": "lookup unavailable, route as usual"})
    deps.log.info("preferred_agent_lookup", number=mask_number(number),
                  agent=found.agent_id or "", found=found.extension is not None,
                  available=found.available, status=200)
    return _answer(as_text, 200, {"extension": found.extension, "agent_id": found.agent_id,
                                  "available": found.available})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/preferred-agent", preferred_agent)
