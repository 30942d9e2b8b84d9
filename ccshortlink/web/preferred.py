"""GET /api/v1/preferred-agent: which agent a returning caller should reach (the PBX asks)."""

from __future__ import annotations

from aiohttp import web

from ccshortlink.core.privacy import anonymise_number, ip_address_of, mask_number
from ccshortlink.web.api import refusal
from ccshortlink.web.context import DEPS
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


def _refused(as_text: bool, denied: web.Response) -> web.Response:
    """The 401/429 as the API answers it; for CURL() the same status with an empty body."""
    if not as_text:
        return denied
    kept = {name: value for name, value in denied.headers.items()
            if name in ("WWW-Authenticate", "Retry-After")}
    return web.Response(text="", status=denied.status, headers={**NO_STORE, **kept})


# Headers a reverse proxy adds: their request came from somewhere else, whatever the
# socket says (nginx on this box connects from 127.0.0.1 even when trusted_proxies is empty).
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host",
                 "X-Forwarded-Proto", "Via")


def _on_this_box(request: web.Request) -> bool:
    """The caller is this host itself (Asterisk's CURL() beside the daemon) and
    `[callback] lookup_without_token` lets it in: from loopback, through no proxy."""
    if not request.app[DEPS].lookup_without_token:
        return False
    if any(header in request.headers for header in PROXY_HEADERS):
        return False
    address = ip_address_of(request.remote)  # no forwarding header: the socket's peer
    return address is not None and address.is_loopback


async def preferred_agent(request: web.Request) -> web.Response:
    """GET /api/v1/preferred-agent?number=NUMBER[&format=text][&free=1]: the agent of the
    number's latest live link, for the PBX to ring first; from this box, or with the API
    token. `free=1`: the text answer is empty while the agent is known not to be free."""
    deps = request.app[DEPS]
    desk = deps.callbacks
    if desk is None:
        raise web.HTTPNotFound()  # [callback] is off: like any unknown path
    as_text = request.query.get("format") == "text"
    if not _on_this_box(request) and (denied := refusal(request)) is not None:
        return _refused(as_text, denied)
    only_free = request.query.get("free") == "1"
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
    extension = found.extension
    if as_text and only_free and found.available is False:
        extension = None  # busy or away: Dial() would only keep the caller from the queue
    return _answer(as_text, 200, {"extension": extension, "agent_id": found.agent_id,
                                  "available": found.available})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/preferred-agent", preferred_agent)
