"""Read-only report SQL for operators (trace, stats); the store package keeps all writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import phonenumbers

from ccshortlink.core.links import is_code, link_status
from ccshortlink.core.policy import CustomerNumber, PolicyConfig, normalise_number
from ccshortlink.store import SCHEMA_VERSION, StoreError, opening
from ccshortlink.store.callbackreport import callback_events, callbacks_connected
from ccshortlink.store.linkadmin import trace_changes
from ccshortlink.store.replyreport import reply_counts, reply_events
from ccshortlink.store.reportshapes import Figures, Trace, TraceEvent

__all__ = ["Figures", "Reports", "Trace", "TraceEvent", "number_forms"]

VISIT_KINDS = {"open": "page_opened", "call": "call_tapped", "vcard": "vcard_downloaded"}


def _in(values: Iterable[object]) -> tuple[str, tuple[object, ...]]:
    """'(?, ?, ?)' and its parameters; '(NULL)' for none, which matches nothing."""
    items = tuple(values)
    return ("(" + ", ".join("?" * len(items)) + ")" if items else "(NULL)"), items


def number_forms(raw: str, policy: PolicyConfig) -> tuple[str | None, list[str]]:
    """The E.164 form of a number typed in any form, and every form it may be stored in
    (skipped calls keep the caller ID as Asterisk gave it)."""
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    forms = [text, digits, "+" + digits]
    # Landlines too: a trace must find the calls that were skipped for not being mobiles.
    customer = normalise_number(text, replace(policy, mobile_only=False))
    e164 = customer.e164 if isinstance(customer, CustomerNumber) else None
    if e164 is not None:
        national = phonenumbers.national_significant_number(phonenumbers.parse(e164))
        forms += [e164, e164[1:], national, "0" + national]
    return e164, list(dict.fromkeys(f for f in forms if f.strip("+")))


class Reports:
    """Queries over the daemon's database, opened read-only so a report can never change it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path) -> Reports:
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"{path}: is a directory, not a database file")
        if not path.is_file():
            raise StoreError(f"{path}: no database there (has the daemon run yet?)")
        try:
            db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise opening.explain(path, exc) from None
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA busy_timeout=5000")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            opening.check_length(path)
        except sqlite3.Error as exc:
            db.close()
            raise opening.explain(path, exc) from None
        if not 0 < version <= SCHEMA_VERSION:
            db.close()
            raise StoreError(f"{path}: not a database this ccshortlink can read (schema version"
                             f" {version}, this program knows 1 to {SCHEMA_VERSION})")
        return cls(db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Reports:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return self._db.execute(sql, params).fetchall()

    # --- trace ---------------------------------------------------------------------------

    def trace(self, query: str, policy: PolicyConfig, now: float) -> Trace | None:
        """A code, else a linkedid, else a number in any form; None when nothing is known."""
        query = query.strip()
        if not query:
            return None
        if is_code(query):
            link = self._rows("SELECT * FROM links WHERE code = ?", (query,))
            if link:
                return self._trace_link(link[0], now)
        if self._rows("SELECT 1 FROM decisions WHERE linkedid = ? UNION ALL"
                      " SELECT 1 FROM links WHERE linkedid = ? LIMIT 1", (query, query)):
            return self._trace_call(query, now)
        return self._trace_customer(query, policy, now)

    def _trace_customer(self, query: str, policy: PolicyConfig, now: float) -> Trace | None:
        e164, forms = number_forms(query, policy)
        where, params = _in(forms)
        decisions = self._rows(f"SELECT * FROM decisions WHERE customer_number IN {where}", params)
        link_ids = {r["id"] for r in self._rows(
            f"SELECT id FROM links WHERE customer_number IN {where}", params)}
        links_in, link_params = _in(link_ids)
        sms_ids = {r["id"] for r in self._rows(
            f"SELECT id FROM sms WHERE destination IN {where} OR link_id IN {links_in}",
            params + link_params)}
        opt_outs = self._rows(f"SELECT * FROM opt_outs WHERE customer_number IN {where}", params)
        replies = [TraceEvent(*event) for event in reply_events(self._db, where, params)]
        if not (decisions or link_ids or sms_ids or opt_outs or replies):
            return None
        story = self._story("customer", e164 or query, decisions, link_ids, sms_ids, opt_outs, now)
        return replace(story, events=sorted(replies + story.events, key=lambda e: e.at))

    def _trace_link(self, link: sqlite3.Row, now: float) -> Trace:
        # The pair's skipped decisions while the link lived say why no further SMS went out;
        # once the number is anonymised, other customers may share its masked form.
        pair_number = "" if "*" in link["customer_number"] else link["customer_number"]
        decisions = self._rows(
            "SELECT * FROM decisions WHERE link_id = ? OR (agent_id = ? AND customer_number = ?"
            " AND decided_at BETWEEN ? AND ?)", (link["id"], link["agent_id"], pair_number,
                                                 link["created_at"], link["expires_at"]))
        sms_ids = {r["id"] for r in self._rows("SELECT id FROM sms WHERE link_id = ?",
                                               (link["id"],))}
        opt_outs = self._rows("SELECT * FROM opt_outs WHERE customer_number = ?", (pair_number,))
        return self._story("link", link["code"], decisions, {link["id"]}, sms_ids, opt_outs, now)

    def _trace_call(self, linkedid: str, now: float) -> Trace:
        decisions = self._rows("SELECT * FROM decisions WHERE linkedid = ?", (linkedid,))
        link_ids = {r["link_id"] for r in decisions if r["link_id"] is not None}
        link_ids |= {r["id"] for r in self._rows("SELECT id FROM links WHERE linkedid = ?",
                                                 (linkedid,))}
        sms_ids = {r["sms_id"] for r in decisions if r["sms_id"] is not None}
        return self._story("call", linkedid, decisions, link_ids, sms_ids, [], now)

    def _story(self, subject: str, key: str, decisions: list[sqlite3.Row], link_ids: set[int],
               sms_ids: set[int], opt_outs: list[sqlite3.Row], now: float) -> Trace:
        links_in, link_params = _in(link_ids)
        sms_in, sms_params = _in(sms_ids)
        links = self._rows(f"SELECT * FROM links WHERE id IN {links_in} ORDER BY id", link_params)
        decided_in, decided_params = _in({d["link_id"] for d in decisions} - {None})
        codes = {r["id"]: r["code"] for r in links} | {r["id"]: r["code"] for r in self._rows(
            f"SELECT id, code FROM links WHERE id IN {decided_in}", decided_params)}
        sms = self._rows(f"SELECT s.*, COALESCE(l.code, '') AS code FROM sms s"
                         f" LEFT JOIN links l ON l.id = s.link_id"
                         f" WHERE s.id IN {sms_in} ORDER BY s.id", sms_params)
        message_ids: dict[int, list[str | None]] = {}
        for part in self._rows(f"SELECT sms_id, message_id FROM sms_parts WHERE sms_id IN"
                               f" {sms_in} ORDER BY sms_id, part_no", sms_params):
            message_ids.setdefault(part["sms_id"], []).append(part["message_id"])
        events: list[TraceEvent] = []
        for d in decisions:
            events.append(TraceEvent(d["decided_at"], "decision", {
                "trigger": d["trigger"], "linkedid": d["linkedid"], "agent": d["agent_id"],
                "agent_extension": d["agent_extension"], "customer_number": d["customer_number"],
                "talk_seconds": d["talk_seconds"], "outcome": d["outcome"], "reason": d["reason"],
                "code": codes.get(d["link_id"], ""), "sms_id": d["sms_id"], "pbx": _pbx(d)}))
        changes, told = trace_changes(self._db, links_in, link_params)  # revoked, extended
        events += [TraceEvent(at, kind, facts) for at, kind, facts in changes]
        events += [TraceEvent(at, kind, facts)
                   for at, kind, facts in callback_events(self._db, links_in, link_params)]
        for link in links:
            code = {"code": link["code"]}
            events.append(TraceEvent(link["created_at"], "link_created", {
                **code, "agent": link["agent_id"], "customer_number": link["customer_number"],
                "expires_at": link["expires_at"]}))
            if link["revoked_at"] is not None:
                if link["id"] not in told:  # revoked by SQL: who did it is not known
                    events.append(TraceEvent(link["revoked_at"], "link_revoked", code))
            elif link["expires_at"] <= now:
                events.append(TraceEvent(link["expires_at"], "link_expired", code))
        smpp_status = {s["id"]: s["smpp_status"] for s in sms}
        logged: set[int] = set()
        for e in self._rows(f"SELECT * FROM sms_events WHERE sms_id IN {sms_in} ORDER BY id",
                            sms_params):
            facts = {"sms_id": e["sms_id"], "detail": e["detail"]}
            if e["kind"] in ("failed", "expired"):
                facts["smpp_status"] = smpp_status.get(e["sms_id"])
            events.append(TraceEvent(e["at"], "sms_" + e["kind"], facts))
            logged.add(e["sms_id"])
        for s in sms:
            if s["id"] not in logged:  # its events are gone (retention): the row remains
                events.append(TraceEvent(s["created_at"], "sms_created", {
                    "sms_id": s["id"], "detail": f"now {s['status']}"}))
        for v in self._rows(f"SELECT v.*, l.code FROM visits v JOIN links l ON l.id = v.link_id"
                            f" WHERE v.link_id IN {links_in} ORDER BY v.id", link_params):
            events.append(TraceEvent(v["at"], VISIT_KINDS.get(v["kind"], "visit_" + v["kind"]), {
                "code": v["code"], "client": v["client"], "user_agent": v["user_agent"]}))
        for r in self._rows(f"SELECT r.*, l.code FROM ratings r JOIN links l ON l.id = r.link_id"
                            f" WHERE r.link_id IN {links_in}", link_params):
            events.append(TraceEvent(r["updated_at"], "rated", {
                "code": r["code"], "stars": r["stars"], "comment": r["comment"]}))
        for o in opt_outs:
            events.append(TraceEvent(o["at"], "opted_out", {
                "customer_number": o["customer_number"], "source": o["source"]}))
        events.sort(key=lambda e: e.at)  # stable: same-instant events keep their causal order
        return Trace(subject, key, events, links=[_link_summary(r, now) for r in links],
                     sms=[_sms_summary(r, message_ids.get(r["id"], [])) for r in sms])

    # --- stats ---------------------------------------------------------------------------

    def stats(self, since: float) -> dict[str, Figures]:
        """Figures per agent ID (skipped calls of unknown extensions under '') since `since`."""
        per_agent: dict[str, dict[str, int]] = {}

        def add(rows: list[sqlite3.Row]) -> None:
            for row in rows:
                figures = per_agent.setdefault(row["agent_id"], {})
                for name in row.keys():  # noqa: SIM118 - sqlite3.Row iterates values
                    if name != "agent_id":
                        figures[name] = figures.get(name, 0) + int(row[name] or 0)

        add(self._rows("SELECT agent_id, COUNT(*) AS calls_decided,"
                       " SUM(CASE WHEN outcome = 'skipped' THEN 1 END) AS skipped FROM decisions"
                       " WHERE decided_at >= ? GROUP BY agent_id", (since,)))
        # An SMS with no link (the missed-call SMS) counts under agent "", as its decision does.
        add(self._rows("SELECT COALESCE(l.agent_id, '') AS agent_id,"
                       " SUM(CASE WHEN s.smpp_status = 0 THEN 1 END) AS sms_sent,"
                       " SUM(CASE WHEN s.status = 'delivered' THEN 1 END) AS sms_delivered,"
                       # cancelled on purpose (revoked link, opted-out number): not a failure
                       " SUM(CASE WHEN s.status IN ('failed', 'expired') AND s.error NOT IN"
                       " ('link revoked', 'number opted out') THEN 1 END) AS sms_failed,"
                       " SUM(CASE WHEN s.status IN ('queued', 'submitting') THEN 1 END)"
                       " AS sms_waiting"
                       " FROM sms s LEFT JOIN links l ON l.id = s.link_id"
                       " WHERE s.created_at >= ? GROUP BY 1", (since,)))
        add(self._rows("SELECT l.agent_id,"
                       " COUNT(DISTINCT CASE WHEN v.kind = 'open' THEN v.link_id END)"
                       " AS links_opened,"
                       " COUNT(DISTINCT CASE WHEN v.kind = 'call' THEN v.link_id END)"
                       " AS called_back"
                       " FROM visits v JOIN links l ON l.id = v.link_id WHERE v.at >= ?"
                       " GROUP BY l.agent_id", (since,)))
        add(callbacks_connected(self._db, since))
        add(self._rows("SELECT agent_id, COUNT(*) AS ratings, SUM(stars) AS rating_sum"
                       " FROM ratings WHERE updated_at >= ? GROUP BY agent_id", (since,)))
        return {agent: Figures(**figures) for agent, figures in sorted(per_agent.items())}

    def reply_counts(self, since: float) -> dict[str, int]:
        return reply_counts(self._db, since)


def _link_summary(row: sqlite3.Row, now: float) -> dict[str, Any]:
    status = link_status(row["expires_at"], row["revoked_at"], now)
    return {"code": row["code"], "agent": row["agent_id"],
            "customer_number": row["customer_number"], "linkedid": row["linkedid"],
            "pbx": _pbx(row), "created_at": row["created_at"], "expires_at": row["expires_at"],
            "revoked_at": row["revoked_at"], "status": status}


def _pbx(row: sqlite3.Row) -> str:  # '' before schema 5, and for the API's and CLI's sends
    return str(row["pbx"]) if "pbx" in row.keys() else ""  # noqa: SIM118 - schema 4


def _sms_summary(row: sqlite3.Row, message_ids: list[str | None]) -> dict[str, Any]:
    return {"id": row["id"], "code": row["code"] or "", "destination": row["destination"],
            "kind": row["kind"] if "kind" in row.keys() else "card",  # noqa: SIM118 - schema 2
            "status": row["status"], "attempts": row["attempts"], "parts": len(message_ids),
            "message_ids": [m for m in message_ids if m],
            "smpp_status": row["smpp_status"], "error": row["error"], "text": row["text"],
            "created_at": row["created_at"]}
