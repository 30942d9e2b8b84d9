""""Call me back" on the card: what the card says about the agent and the link's latest
call-back, and the POST that asks for one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from aiohttp import web

from ccshortlink.app.linkcache import CachedLink
from ccshortlink.core.agents import Agent
from ccshortlink.core.records import CallbackView
from ccshortlink.core.vocab import CallbackState, Presence
from ccshortlink.web.context import DEPS, WebDeps, foreign_post, message_page, visitor
from ccshortlink.web.guard import anonymise, client_key
from ccshortlink.web.i18n import strings
from ccshortlink.web.livelink import for_live_link, language

# While one of these holds, the card refreshes itself (no script) and offers no second tap.
IN_PROGRESS = frozenset({CallbackState.WAITING, CallbackState.CALLING_AGENT,
                         CallbackState.CALLING_CUSTOMER, CallbackState.CONNECTED})
REFRESH_SECONDS = 5
# The query the card's own refresh and the redirect after a tap carry: not a new open.
RETURN_QUERY = "callback"

_WORDS = {
    CallbackState.WAITING: "cb_waiting",
    CallbackState.CALLING_AGENT: "cb_calling",
    CallbackState.CALLING_CUSTOMER: "cb_calling",
    CallbackState.CONNECTED: "cb_connected",
    CallbackState.CUSTOMER_MISSED: "cb_customer_missed",
    CallbackState.AGENT_MISSED: "cb_agent_missed",
    CallbackState.EXPIRED: "cb_expired",
    CallbackState.FAILED: "cb_failed",
}
_REFUSALS = {"link_limit": "cb_link_limit", "opted_out": "cb_opted_out"}
_UNHAPPY = frozenset({CallbackState.CUSTOMER_MISSED, CallbackState.AGENT_MISSED,
                      CallbackState.EXPIRED, CallbackState.FAILED, CallbackState.REFUSED})


@dataclass(frozen=True)
class CallbackPanel:
    """The card's call-back part in the visitor's language: never the customer's number."""

    presence: str  # "free", "busy", "away"; "" when unknown (then nothing is shown)
    presence_words: str
    status: str  # the latest call-back in plain words; "" when the link has none
    unhappy: bool  # the status is a refusal or a failure (shown as such)
    in_progress: bool  # refresh the page, hide the button

    @property
    def key(self) -> str:
        """What tells two renderings of the card apart (the cached pages are kept per key)."""
        return f"{self.presence}|{int(self.in_progress)}{int(self.unhappy)}|{self.status}"


def opening_words(opens_at: float, now: float, zone: tzinfo, lang: str) -> str:
    """"tomorrow from 09:00": when the agent's hours next begin, as the customer reads it."""
    t = strings(lang)
    opens = datetime.fromtimestamp(opens_at, zone)
    days = (opens.date() - datetime.fromtimestamp(now, zone).date()).days
    if days <= 0:
        when = t["today"]
    elif days == 1:
        when = t["tomorrow"]
    elif days < 7:
        when = t["weekdays"].split(",")[opens.weekday()]
    else:
        when = opens.strftime("%Y-%m-%d")
    return t["cb_outside_hours"].format(when=when, time=opens.strftime("%H:%M"))


def status_words(view: CallbackView, now: float, zone: tzinfo, lang: str) -> str:
    """The link's latest call-back in plain words."""
    t = strings(lang)
    if view.state == CallbackState.DONE:
        if view.talk_seconds is None:
            return t["cb_done_plain"]
        return t["cb_done"].format(minutes=max(1, round(view.talk_seconds / 60)))
    if view.state == CallbackState.REFUSED:
        if view.reason == "outside_hours":
            return (opening_words(view.opens_at, now, zone, lang) if view.opens_at is not None
                    else t["cb_outside_hours_plain"])
        return t[_REFUSALS.get(view.reason, "cb_refused")]
    return t[_WORDS[view.state]]


def build_panel(presence: Presence, view: CallbackView | None, now: float, zone: tzinfo,
                lang: str) -> CallbackPanel:
    t = strings(lang)
    shown = "" if presence == Presence.UNKNOWN else str(presence)
    status = status_words(view, now, zone, lang) if view is not None else ""
    if view is not None and view.state == CallbackState.WAITING and presence in (
            Presence.FREE, Presence.UNKNOWN):
        # Waiting only until the dispatcher's next turn (or the PBX link): not "busy".
        status = t["cb_soon"]
    return CallbackPanel(
        presence=shown, presence_words=t[f"presence_{shown}"] if shown else "",
        status=status,
        unhappy=view is not None and view.state in _UNHAPPY,
        in_progress=view is not None and view.state in IN_PROGRESS)


async def panel_for(deps: WebDeps, code: str, agent: Agent, lang: str, *,
                    fresh: bool = False) -> CallbackPanel | None:
    """The call-back part of this card as of now; None when [callback] is off. `fresh`: the
    page after a tap or one of its refreshes, which never takes a remembered answer."""
    desk = deps.callbacks
    if desk is None:
        return None
    known, latest = (False, None) if fresh else deps.settled.get(code)
    if not known:
        latest = await desk.latest(code)
        if latest is None or latest.state not in IN_PROGRESS:
            deps.settled.keep(code, latest)
        else:
            deps.settled.forget(code)
    return build_panel(desk.presence(agent.id), latest, deps.clock(), deps.zone, lang)


async def ask(request: web.Request) -> web.StreamResponse:
    """POST /{code}/callback: the customer asks the agent to call them back."""
    deps = request.app[DEPS]
    if deps.callbacks is None:  # [callback] is off: like any path that is not there
        return message_page(deps, "missing", 404, language(request, None))
    return await _ask(request)


@for_live_link
async def _ask(request: web.Request, deps: WebDeps, entry: CachedLink,
               agent: Agent) -> web.StreamResponse:
    code = entry.link.code
    desk = deps.callbacks
    assert desk is not None  # ask() answered 404 otherwise
    # The link is the credential; this only stops other sites posting with a visitor's browser.
    if refusal := foreign_post(request):
        deps.log.info("callback_tap_rejected", code=code, reason=refusal, status=403)
        raise web.HTTPForbidden(text="only the card's own page can ask for a call-back")
    if not deps.writes.allow(client_key(visitor(request))):
        deps.log.warning("client_rate_limited", client=anonymise(visitor(request)),
                         reason="callbacks")
        return message_page(deps, "busy", 429, language(request, agent),
                            **{"Retry-After": str(int(deps.writes.window))})
    deps.settled.forget(code)
    try:
        view = await desk.request(code)
    except Exception as exc:  # one failed tap must not look like a crash
        deps.log.error("callback_tap_failed", code=code, agent=agent.id,
                       error=type(exc).__name__)
        return message_page(deps, "busy", 503, language(request, agent), **{"Retry-After": "10"})
    if view is None:  # the link stopped being live a moment ago
        deps.log.info("callback_tapped", code=code, agent=agent.id, outcome="not_live",
                      status=404)
        return message_page(deps, "missing", 404, language(request, agent))
    deps.log.info("callback_tapped", code=code, agent=agent.id, callback=view.id,
                  outcome=view.state, reason=view.reason, status=303)
    # Post/redirect/get, relative so it works behind a path prefix: /{code}/callback -> /{code}
    raise web.HTTPSeeOther(location=f"../{code}?{RETURN_QUERY}=1#callback")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/{code}/callback", ask)

