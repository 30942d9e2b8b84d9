"""The domain's records: what the use cases, the store and the pages hand each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ccshortlink.core.policy import Decision, SendFacts
from ccshortlink.core.vocab import (
    CallbackState,
    DecisionOutcome,
    LinkStatus,
    ReplyKind,
    Trigger,
)


@dataclass(frozen=True)
class SmsDraft:
    """An SMS ready for the outbox, already encoded into its parts."""

    text: str
    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]
    not_before: float
    expires_at: float


@dataclass(frozen=True)
class IssuedLink:
    code: str
    link_id: int
    reused: bool
    sms_id: int | None


@dataclass(frozen=True)
class LinkView:
    """What the card page may know about a link: never the customer's number."""

    code: str
    agent_id: str
    status: LinkStatus
    created_at: float
    expires_at: float
    customer_region: str
    rating: int | None
    comment: str


@dataclass(frozen=True)
class AgentLiveStats:
    calls_handled: int
    customers_served: int
    rating_count: int
    rating_sum: int


@dataclass(frozen=True)
class RatingView:
    stars: int
    comment: str
    created_at: float


@dataclass(frozen=True)
class OutboxSms:
    """A due SMS claimed for sending."""

    id: int
    destination: str
    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]
    attempts: int
    expires_at: float
    code: str


@dataclass(frozen=True)
class DecisionRecord:
    linkedid: str
    trigger: Trigger  # old rows may hold vocab.OLD_QUEUE_TRIGGER
    agent_id: str
    agent_extension: str
    customer_number: str
    talk_seconds: float | None
    outcome: DecisionOutcome | None  # None until the batch judges it (see CardRequest)
    reason: str
    pbx: str = ""  # the PBX the call came from ([[ami]] name); '' for the API and CLI


@dataclass(frozen=True)
class CardRequest:
    """One decision for a batch: the facts are read inside the batch's transaction.

    `judge` and `draft` run inside that transaction, so they must be pure and quick (policy,
    render, encode). Without `judge` the record is already final (a skip known before any
    facts).
    """

    record: DecisionRecord  # outcome and reason are filled in from `judge`
    customer_region: str = ""
    pair_since: float = 0.0
    day_start: float = 0.0
    ttl: float = 0.0
    judge: Callable[[SendFacts], Decision] | None = None
    draft: Callable[[str, float], SmsDraft] | None = None  # (code, not_before) -> the SMS
    # The missed-call SMS: no link, and its resend window is its own (store/notices.py).
    missed_call: bool = False


@dataclass(frozen=True)
class CardResult:
    record: DecisionRecord  # as stored: sent | deferred | skipped, with the reason
    issued: IssuedLink | None
    sms_id: int | None = None  # an SMS queued without a link (the missed-call SMS)


@dataclass(frozen=True)
class SubmittedSms:
    sms_id: int
    message_ids: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class ReceiptRecord:
    message_id: str
    state: str
    error_code: str
    at: float


@dataclass(frozen=True)
class ReplyRecord:
    """A customer's SMS to us, as typed, and what it was taken for."""

    customer_number: str  # E.164 when it could be normalised
    text: str
    kind: ReplyKind
    received_at: float


@dataclass(frozen=True)
class ReplyResult:
    changed: bool  # the do-not-send list changed
    sms_id: int | None  # the automatic answer queued, if any
    not_answered: str  # why no answer went out ('' when one did, or none was due)


@dataclass(frozen=True)
class CallbackView:
    """A link's latest call-back as the card shows it: never the customer's number."""

    id: int
    state: CallbackState
    # REFUSED/FAILED/EXPIRED: why, as a short word the card and `trace` translate:
    # "outside_hours", "link_limit", "agent_limit", "opted_out", "link_not_live",
    # "pbx_down", "pbx_refused", ...; "" otherwise.
    reason: str
    requested_at: float
    opens_at: float | None = None  # outside hours: when the agent's hours next begin (epoch s)
    talk_seconds: int | None = None


@dataclass(frozen=True)
class PreferredAgent:
    """The answer of GET /api/v1/preferred-agent: the agent of the number's latest live link."""

    extension: str | None  # None: an unknown or opted-out number
    agent_id: str | None
    available: bool | None  # None: presence unknown (or no agent)
