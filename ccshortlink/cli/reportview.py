"""Renders reports for people (a timeline and tables in local time) and for tools (JSON)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ccshortlink.cli.replyview import describe_reply, replies_line
from ccshortlink.config.ami import DEFAULT_PBX
from ccshortlink.store.reports import Figures, Trace, TraceEvent

LABELS = {
    "decision": "decision", "link_created": "link created", "link_revoked": "link revoked",
    "link_expired": "link expired", "sms_queued": "SMS queued", "sms_submitted": "SMS submitted",
    "sms_retry": "SMS retry", "sms_receipt": "SMS receipt", "sms_failed": "SMS failed",
    "sms_expired": "SMS expired", "sms_requeued": "SMS requeued", "sms_created": "SMS",
    "page_opened": "page opened", "call_tapped": "call tapped",
    "vcard_downloaded": "vCard saved", "rated": "rated", "opted_out": "opted out",
    "link_extended": "link extended",
    "reply": "reply",
    "callback_requested": "call-back", "callback_placed": "cb placed",
    "callback_agent_answered": "cb agent up", "callback_connected": "cb connected",
    "callback_ended": "cb ended", "callback_refused": "cb refused",
}
TRIGGERS = {"hangup": "call ended", "agent_complete": "queue call ended",
            "feature_code": "agent feature code", "api": "API request", "cli": "CLI send",
            "pbx_restart": "call cut by a PBX restart",
            "no_cdr": "call begun before ccshortlink started, no Cdr",
            "not_answered": "call not answered by an agent",
            "evicted": "channel let go (max_live_channels)",
            "call_timeout": "no Hangup within call_timeout_hours"}
SUBJECTS = {"customer": "Customer", "link": "Link", "call": "Call"}
_NEXT_TRY = re.compile(r"next try at (\d+(?:\.\d+)?)")  # the store writes Unix times
COLUMNS = (("calls", "calls_decided"), ("skipped", "skipped"), ("sent", "sms_sent"),
           ("delivered", "sms_delivered"), ("failed", "sms_failed"), ("waiting", "sms_waiting"),
           ("opened", "links_opened"), ("call taps", "called_back"))
# [callback] on: the funnel's last step, call-backs in which the customer answered. The card's
# call-button taps (JSON `called_back`, as it always was) are titled "call taps" so that the
# two are not confused.
CALLBACK_COLUMN = ("called back", "callbacks_connected")


def local(at: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at, zone)


def _stamp(at: float | None, zone: ZoneInfo) -> str:
    return "" if at is None else f"{local(at, zone):%Y-%m-%d %H:%M:%S}"


# --- trace -------------------------------------------------------------------------------

def trace_json(trace: Trace, zone: ZoneInfo) -> dict[str, Any]:
    def when(record: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(record)
        for key in ("created_at", "expires_at", "revoked_at", "previous_expires_at",
                    "opens_at"):
            if out.get(key) is not None:
                out[key] = local(out[key], zone).isoformat()
        return out

    return {
        "subject": trace.subject, "key": trace.key, "timezone": zone.key,
        "links": [when(link) for link in trace.links], "sms": [when(sms) for sms in trace.sms],
        "events": [{"at": local(e.at, zone).isoformat(), "kind": e.kind, **when(e.facts)}
                   for e in trace.events],
    }


def _describe(event: TraceEvent, zone: ZoneInfo) -> str:
    f = event.facts
    kind = event.kind
    if kind == "decision":
        talk = f" talk {f['talk_seconds']:.0f}s," if f["talk_seconds"] is not None else ""
        call = f" {f['linkedid']}" if f["linkedid"] else ""
        pbx = f.get("pbx", "")
        if pbx and pbx != DEFAULT_PBX:  # one unnamed PBX: the lines read as they always have
            call = f"{call} on {pbx}"
        agent = f["agent"] or "no agent"
        ext = f" (ext {f['agent_extension']})" if f["agent_extension"] else ""
        outcome = f["outcome"] + (f": {f['reason']}" if f["reason"] else "")
        link = f" [link {f['code']}]" if f["code"] else ""
        return (f"{TRIGGERS.get(f['trigger'], f['trigger'])}{call}, {agent}{ext},{talk}"
                f" customer {f['customer_number'] or 'unknown'} → {outcome}{link}")
    if kind == "link_created":
        return (f"{f['code']} for {f['agent']} → {f['customer_number']},"
                f" expires {_stamp(f['expires_at'], zone)[:16]}")
    if kind in ("link_revoked", "link_expired"):
        return str(f["code"]) + (f" by {f['by']}" if f.get("by") else "")
    if kind == "link_extended":
        return f"{f['code']} by {f['by']} until {_stamp(f['expires_at'], zone)[:16]}"
    if kind.startswith("sms_"):
        detail = _NEXT_TRY.sub(lambda m: f"next try at {_stamp(float(m[1]), zone)[11:]}",
                               f["detail"])
        status = f.get("smpp_status")
        smpp = f"0x{status:02X}" if isinstance(status, int) and status else ""
        if smpp and smpp not in detail:
            return f"#{f['sms_id']} {detail} (SMPP status {smpp})"
        return f"#{f['sms_id']} {detail}".rstrip()
    if kind == "rated":
        comment = f" “{f['comment']}”" if f["comment"] else ""
        return f"{f['code']} {f['stars']}/5{comment}"
    if kind == "opted_out":
        return f"{f['customer_number']} ({f['source']})"
    if kind == "reply":
        return describe_reply(f)
    if kind.startswith("callback_"):
        return _describe_callback(kind, f, zone)
    client = ", ".join(x for x in (f.get("client"), f.get("user_agent")) if x)
    return f"{f.get('code', '')}" + (f" ({client})" if client else "")


def _describe_callback(kind: str, f: Mapping[str, Any], zone: ZoneInfo) -> str:
    """A call-back's step: "#3 for CS1001 [link a2B3c4D5e] → done, talk 42s"."""
    head = f"#{f['callback_id']} for {f['agent']} [link {f['code']}]"
    if kind == "callback_refused":
        opens = f" (opens {_stamp(f['opens_at'], zone)[:16]})" if f.get("opens_at") else ""
        return f"{head} → refused: {f['reason']}{opens}"
    if kind == "callback_ended":
        reason = f": {f['reason']}" if f.get("reason") else ""
        talk = f", talk {f['talk_seconds']}s" if f.get("talk_seconds") is not None else ""
        return f"{head} → {f['outcome']}{reason}{talk}"
    return head


def render_trace(trace: Trace, zone: ZoneInfo) -> str:
    decisions = sum(1 for e in trace.events if e.kind == "decision")
    lines = [f"{SUBJECTS[trace.subject]} {trace.key}: {decisions} decision(s),"
             f" {len(trace.links)} link(s), {len(trace.sms)} SMS; times in {zone.key}", ""]
    for event in trace.events:
        label = LABELS.get(event.kind, event.kind.replace("_", " "))
        lines.append(f"{_stamp(event.at, zone)}  {label:<14} {_describe(event, zone)}")
    if trace.links:
        lines.append("")
    for link in trace.links:
        lines.append(f"Link {link['code']} ({link['agent']} → {link['customer_number']}):"
                     f" {link['status']}, expires {_stamp(link['expires_at'], zone)[:16]}")
    for sms in trace.sms:
        lines.append("")
        what = f"link {sms['code']}" if sms["code"] else sms["kind"].replace("_", " ")
        lines.append(f"SMS #{sms['id']} to {sms['destination']} ({what}):"
                     f" {sms['status']} after {sms['attempts']} attempt(s), {sms['parts']} part(s)")
        lines.append(f"  {sms['text']}")
    return "\n".join(lines)


# --- stats -------------------------------------------------------------------------------

def _width(text: str) -> int:
    """Columns on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
          figures: bool = True) -> list[str]:
    """Aligned columns: the first left-aligned, the others right-aligned when they are figures."""
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [row[0] + " " * (widths[0] - _width(row[0]))]
        for cell, w in zip(row[1:], widths[1:], strict=True):
            pad = " " * (w - _width(cell))
            cells.append(pad + cell if figures else cell + pad)
        out.append("  ".join(cells).rstrip())
    return out


def _rating(figures: Figures) -> str:
    average = figures.average_rating
    return "-" if average is None else f"{average:.1f} ({figures.ratings})"


def _total(per_agent: Mapping[str, Figures]) -> Figures:
    total = Figures()
    for figures in per_agent.values():
        total = total + figures
    return total


def stats_json(periods: Sequence[tuple[str, float, Mapping[str, Figures]]],
               names: Mapping[str, str], zone: ZoneInfo,
               replies: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Any]:
    return {"timezone": zone.key, "periods": [
        {"period": period, "since": local(since, zone).isoformat(),
         "all": _total(per_agent).as_dict(), **({"replies": dict(replies[period])}
                                                if replies and period in replies else {}),
         "agents": {agent: {"name": names.get(agent, ""), **figures.as_dict()}
                    for agent, figures in _with_agents(per_agent, names).items()}}
        for period, since, per_agent in periods]}


def _with_agents(per_agent: Mapping[str, Figures], names: Mapping[str, str]) -> dict[str, Figures]:
    """Every configured agent (zeros included), then IDs found only in the data."""
    merged = {agent: per_agent.get(agent, Figures()) for agent in names}
    merged.update({agent: f for agent, f in per_agent.items() if agent not in merged})
    return merged


def render_stats(periods: Sequence[tuple[str, float, Mapping[str, Figures]]],
                 names: Mapping[str, str], zone: ZoneInfo,
                 replies: Mapping[str, Mapping[str, int]] | None = None, *,
                 callbacks: bool = False) -> str:
    columns = (*COLUMNS, CALLBACK_COLUMN) if callbacks else COLUMNS
    header = ["agent", *(title for title, _ in columns), "rating"]
    lines: list[str] = []
    for period, since, per_agent in periods:
        title = "Today" if period == "today" else "Last 7 days"
        lines += [f"{title} (since {local(since, zone):%Y-%m-%d %H:%M} {zone.key})"]
        rows = []
        for agent, figures in [("all agents", _total(per_agent)),
                               *_with_agents(per_agent, names).items()]:
            label = agent if agent == "all agents" else (
                f"{agent} {names[agent]}" if agent in names else agent or "(no agent)")
            values = figures.as_dict()
            rows.append([label, *(str(values[key]) for _, key in columns), _rating(figures)])
        lines += table(header, rows)
        if replies and period in replies:
            lines.append(replies_line(replies[period]))
        lines.append("")
    return "\n".join(lines).rstrip()
