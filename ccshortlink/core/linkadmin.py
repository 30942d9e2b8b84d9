"""Links as operators see them: their records, revoking and extending rules, their JSON; pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from ccshortlink.core.links import link_url
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.vocab import LinkStatus

DAY = 86_400.0
MAX_EXTEND_DAYS = 365  # a card link is for coming back to an agent, not a permanent address
LIST_LIMIT = 100  # links a list shows unless asked for more
MAX_LIST_LIMIT = 1000


class ChangeKind(StrEnum):
    """What an operator did to a link (stored in link_changes.kind, shown by `trace`)."""

    REVOKED = "revoked"
    EXTENDED = "extended"


class ChangedBy(StrEnum):
    """Where the change came from (stored in link_changes.source)."""

    CLI = "cli"
    API = "api"


@dataclass(frozen=True)
class LinkChange:
    at: float
    kind: ChangeKind
    by: str
    expires_at: float | None = None  # extended: the new expiry
    previous_expires_at: float | None = None


@dataclass(frozen=True)
class LinkEntry:
    """One link with what became of it: its SMS, its visits, its rating, operators' changes."""

    code: str
    agent_id: str
    customer_number: str
    linkedid: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    status: LinkStatus
    opens: int = 0
    call_taps: int = 0
    rating: int | None = None
    sms_status: str = ""  # the newest SMS carrying the link; "" when none was queued
    changes: tuple[LinkChange, ...] = ()


@dataclass(frozen=True)
class Revoked:
    """The outcome of revoking one link: as it is now, and what this request changed."""

    entry: LinkEntry
    revoked_now: bool  # False: it was revoked already
    sms_cancelled: int  # queued SMS carrying the link that will no longer be sent


def days_problem(days: int) -> str | None:
    """Why `--days` / {"days": ...} is unusable, or None."""
    if not 1 <= days <= MAX_EXTEND_DAYS:
        return f"days must be a whole number from 1 to {MAX_EXTEND_DAYS}, got {days}"
    return None


def extended_expiry(expires_at: float, now: float, days: int) -> float:
    """`days` more: counted from the expiry while live, from now once it has passed."""
    return max(expires_at, now) + days * DAY


def shown_number(number: str, *, in_full: bool) -> str:
    """In full only to someone who asked by that number; masked anywhere else."""
    return number if in_full else mask_number(number)


def _when(at: float | None, zone: tzinfo) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, zone).isoformat()


def link_json(entry: LinkEntry, zone: tzinfo, public_url: str, *,
              full_number: bool = False) -> dict[str, Any]:
    """The shape `links ... --json` prints and the API answers; times in `zone`."""
    return {
        "code": entry.code, "url": link_url(public_url, entry.code) if public_url else "",
        "agent": entry.agent_id,
        "customer_number": shown_number(entry.customer_number, in_full=full_number),
        "linkedid": entry.linkedid, "status": entry.status,
        "created_at": _when(entry.created_at, zone), "expires_at": _when(entry.expires_at, zone),
        "revoked_at": _when(entry.revoked_at, zone),
        "opens": entry.opens, "call_taps": entry.call_taps, "rating": entry.rating,
        "sms_status": entry.sms_status,
        "changes": [{"at": _when(c.at, zone), "kind": c.kind, "by": c.by,
                     "expires_at": _when(c.expires_at, zone),
                     "previous_expires_at": _when(c.previous_expires_at, zone)}
                    for c in entry.changes],
    }
