"""Machine-facing routes: /healthz, /metrics, the CRM send API and robots.txt."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from ccshortlink.core.privacy import mask_number
from ccshortlink.core.vocab import SendStatus
from ccshortlink.web.body import BodyProblem, parse_json, read_capped
from ccshortlink.web.context import DEPS, visitor
from ccshortlink.web.guard import anonymise, client_key


async def healthz(request: web.Request) -> web.Response:
    """200 when AMI, SMPP and the database are up, 503 otherwise; JSON either way.

    With several PBXs, AMI counts as up while any PBX is (`degraded`): one site down must not
    take every daemon out of the load balancer, since the others' cards still go out.
    """
    deps = request.app[DEPS]
    states = dict(deps.health())
    if "db" not in states:
        states["db"] = "up" if await deps.store.ping() else "down"
    # Only the components' states count: `db_reason`, `pbxs` and the like only say why.
    healthy = all(state in ("up", "degraded") if key == "ami" else state == "up"
                  for key, state in states.items() if key in ("ami", "smpp", "db"))
    return web.json_response(states, status=200 if healthy else 503,
                             headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text; the outbox and link gauges are refreshed from the store at scrape time."""
    deps = request.app[DEPS]
    await deps.gauges.refresh()
    deps.publish_visits()
    response = web.Response(body=deps.metrics.exposition(),
                            headers={"Content-Type": deps.metrics.content_type,
                                     "Cache-Control": "no-store"})
    return response


MAX_FIELD = 64  # characters in "agent" or "to": longer is not an agent ID or a number


def _problem(status: int, error: str, **headers: str) -> web.Response:
    return web.json_response({"error": error}, status=status,
                             headers={"Cache-Control": "no-store", **headers})


def _authorised(header: str, token: str) -> bool:
    scheme, _, presented = header.partition(" ")
    # compare_digest on bytes: constant time whatever the presented length or characters
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode("utf-8"), token.encode("utf-8"))


def refusal(request: web.Request) -> web.Response | None:
    """None for a request bearing the API token; else the 429 or 401 to answer.

    With no `[web] api_token` the API is off and every API path is a plain 404.
    """
    deps = request.app[DEPS]
    token = deps.web_config.api_token
    if not token:
        raise web.HTTPNotFound()  # the API is off: look exactly like any unknown path
    key = client_key(visitor(request))
    if deps.misses.blocked(key):
        return _problem(429, "too many failed requests", **{"Retry-After": "60"})
    if not _authorised(request.headers.get("Authorization", ""), token):
        deps.misses.hit(key)
        deps.log.warning("api_unauthorized", client=anonymise(visitor(request)), status=401)
        return _problem(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    return None


async def send(request: web.Request) -> web.Response:
    """POST /api/v1/send {"agent": "CS1001", "to": "+86..."}: text that customer the card."""
    deps = request.app[DEPS]
    if deps.send_card is None:
        raise web.HTTPNotFound()
    denied = refusal(request)
    if denied is not None:
        return denied
    try:  # bounded before parsing: a huge or deeply nested body is a 413/400, never a 500
        payload: Any = parse_json(await read_capped(request))
    except BodyProblem as problem:
        return _problem(problem.status, problem.message)
    if not isinstance(payload, dict) or not all(
            isinstance(payload.get(k), str) and 0 < len(payload[k].strip()) <= MAX_FIELD
            for k in ("agent", "to")):
        return _problem(400, 'body must be {"agent": "<CS ID>", "to": "<customer number>"}')
    agent_id, number = payload["agent"].strip(), payload["to"].strip()
    try:
        result = await deps.send_card(agent_id, number)
    except Exception as exc:  # one failed request must not look like a crash
        deps.log.error("api_send_failed", agent=agent_id, to=mask_number(number),
                       error=type(exc).__name__)
        if deps.store.is_fault(exc):  # nothing was queued: the CRM should simply try again
            return _problem(503, "database unavailable, try again", **{"Retry-After": "10"})
        return _problem(500, "internal error")
    refused = result.get("status") == SendStatus.REFUSED
    deps.log.info("api_send", agent=agent_id, to=mask_number(number),
                  outcome=result.get("status"), reason=result.get("reason", ""),
                  status=422 if refused else 202)
    return web.json_response(result, status=422 if refused else 202,
                             headers={"Cache-Control": "no-store"})


async def robots(_: web.Request) -> web.Response:
    """Crawlers have no business with anyone's card."""
    return web.Response(text="User-agent: *\nDisallow: /\n",
                        headers={"Cache-Control": "public, max-age=86400"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/v1/send", send)
    app.router.add_get("/robots.txt", robots)
