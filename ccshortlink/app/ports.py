"""What the use cases need from the outside world, as typing.Protocols the adapters satisfy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ccshortlink.core.callbacks import CallbackRecord, Claim, Refusal
from ccshortlink.core.linkadmin import LinkEntry, Revoked
from ccshortlink.core.records import (
    AgentLiveStats,
    CallbackView,
    CardRequest,
    CardResult,
    LinkView,
    OutboxSms,
    PreferredAgent,
    RatingView,
    ReceiptRecord,
    ReplyRecord,
    ReplyResult,
    SmsDraft,
    SubmittedSms,
)
from ccshortlink.core.sms import EncodedSms
from ccshortlink.core.vocab import CallbackState, Presence, SmsKind


class SubmitRejected(Exception):
    """The SMS gateway permanently refused a part of the message: retrying will not help."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"SMSC rejected submit_sm with status 0x{status:02X}")


class GatewayClosed(Exception):
    """The SMS gateway is closed (or closing); the message was not fully submitted."""


# --- logging and counters -------------------------------------------------------------------

class Log(Protocol):
    """One line per event with named fields; structlog's bound loggers satisfy it."""

    def bind(self, **fields: Any) -> Log: ...
    def debug(self, event: str, *args: Any, **fields: Any) -> Any: ...
    def info(self, event: str, *args: Any, **fields: Any) -> Any: ...
    def warning(self, event: str, *args: Any, **fields: Any) -> Any: ...
    def error(self, event: str, *args: Any, **fields: Any) -> Any: ...


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Gauge(Protocol):
    def set(self, value: float) -> None: ...


class DecisionCounters(Protocol):
    """The decider's two figures (ops.metrics.Metrics has them)."""

    @property
    def decisions_waiting(self) -> Gauge: ...
    @property
    def decisions_dropped(self) -> Counter: ...


FaultTest = Callable[[BaseException], bool]


# --- the store, split by the use case that needs it -----------------------------------------

class Faults(Protocol):
    def is_fault(self, exc: BaseException) -> bool:
        """A fault of the database itself (locked, disk full, I/O error) that a later try may
        get past; not a bug in one request (a constraint, a bad parameter)."""
        ...


class DecisionStore(Protocol):
    """Sending: every request of a batch decided and recorded in one transaction."""

    async def decide_cards(self, requests: Sequence[CardRequest], now: float,
                           new_code: Callable[[], str]) -> list[CardResult | Exception]: ...


class ClaimedBatch(Protocol):
    @property
    def sms(self) -> Sequence[OutboxSms]: ...
    @property
    def next_due_at(self) -> float | None: ...


class OutboxStore(Faults, Protocol):
    """The outbox: claim due SMS, record what the gateway said about each."""

    async def recover_interrupted(self, now: float) -> int: ...
    async def claim_due_sms(self, now: float, limit: int) -> ClaimedBatch: ...
    async def mark_submitted_many(self, submitted: Sequence[SubmittedSms]) -> list[None]: ...
    async def mark_failed(self, sms_id: int, now: float, *, status: str,
                          smpp_status: int | None, error: str) -> None: ...
    async def retry_later(self, sms_id: int, now: float, not_before: float,
                          error: str) -> None: ...
    def let_go(self, sms_id: int) -> None: ...  # no I/O: this daemon stops holding it


class ReplyStore(Faults, Protocol):
    """Receipts and the customers' replies (STOP/START/HELP and any other text)."""

    async def record_receipts(self, receipts: Sequence[ReceiptRecord]
                              ) -> Sequence[int | None | Exception]: ...
    async def set_opt_out(self, customer_number: str, opted_out: bool, source: str,
                          now: float) -> bool: ...
    async def record_reply(self, reply: ReplyRecord, answer: SmsDraft | None,
                           answer_kind: SmsKind | None,
                           may_answer: Callable[[float | None], bool]) -> ReplyResult: ...


class LinkPages(Protocol):
    async def link_for_page(self, code: str, now: float) -> LinkView | None: ...


class AgentFiguresStore(Protocol):
    async def agent_live_stats(self, agent_id: str) -> AgentLiveStats: ...
    async def recent_ratings(self, agent_id: str, limit: int = 5) -> list[RatingView]: ...


class VisitStore(Protocol):
    async def record_visits(self, visits: Sequence[tuple[str, str, str, str, float]]) -> int: ...
    def is_transient(self, exc: BaseException) -> bool: ...


class HousekeepingStore(Faults, Protocol):
    """Liveness, retention and the WAL's checkpoints."""

    async def ping(self) -> bool: ...
    async def apply_retention(self, cutoff: float, now: float,
                              anonymise: Callable[[str], str]) -> dict[str, int]: ...
    async def take_over_checkpoints(self) -> None: ...
    async def checkpoint(self) -> tuple[int, int]: ...


class HealthProbe(Protocol):
    """Is the database taking writes: the store's own notes, and an empty write."""

    @property
    def path(self) -> object: ...
    @property
    def write_failure(self) -> str | None: ...
    def lock_wait(self) -> float: ...
    async def probe_write(self) -> None: ...


class LinkAdminStore(Faults, Protocol):
    """Operators' link admin (the links API and `ccshortlink links`): every change recorded."""

    async def find_links(self, *, now: float, agent_id: str | None = None,
                         customer_number: str | None = None, include_all: bool = False,
                         limit: int = 100) -> list[LinkEntry]: ...
    async def link_entry(self, code: str, now: float) -> LinkEntry | None: ...
    async def revoke_code(self, code: str, *, by: str, now: float) -> Revoked | None: ...
    async def revoke_number(self, customer_number: str, *, by: str,
                            now: float) -> list[Revoked]: ...
    async def extend_code(self, code: str, days: int, *, by: str,
                          now: float) -> LinkEntry | None: ...

# --- the SMS gateway ------------------------------------------------------------------------

class SmsGateway(Protocol):
    async def submit(self, destination: str, sms: EncodedSms) -> list[str]: ...


class Receipt(Protocol):
    """A delivery receipt as the gateway read it."""

    @property
    def message_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def error_code(self) -> str: ...


class Reply(Protocol):
    """A customer's SMS to us."""

    @property
    def source_addr(self) -> str: ...
    @property
    def text(self) -> str: ...


# --- call-backs and presence ----------------------------------------------------------------

class CallbackStore(Faults, Protocol):
    """The `callbacks` table's use cases (store.callbacks has them, on either database)."""

    async def request_callback(self, code: str, now: float, *, per_link_per_day: int,
                               judge: Callable[[str, str], tuple[str, Refusal | None]]
                               ) -> CallbackRecord | None: ...
    async def callback_queue(self) -> CallbackQueueView: ...
    async def claim_callback(self, callback_id: int, now: float, *, owner: str,
                             lease_until: float) -> Claim: ...
    async def refuse_callback(self, callback_id: int, now: float, refusal: Refusal) -> bool: ...
    async def unclaim_callback(self, callback_id: int) -> None: ...
    async def requeue_callback(self, callback_id: int, now: float, *, reason: str,
                               not_before: float, max_wait_minutes: int) -> bool: ...
    async def record_callback_step(self, callback_id: int, state: CallbackState, now: float,
                                   *, reason: str = "",
                                   talk_seconds: int | None = None) -> bool: ...
    async def expire_callbacks(self, now: float,
                               max_wait_minutes: int) -> list[CallbackRecord]: ...
    async def close_abandoned_callbacks(self, now: float, *, starting: bool) -> list[int]: ...
    async def renew_callback_leases(self, owner: str, until: float) -> None: ...
    async def latest_callback(self, code: str) -> CallbackRecord | None: ...
    async def preferred_agent_of(self, customer_number: str,
                                 now: float) -> tuple[str, str] | None: ...


class CallbackQueueView(Protocol):
    @property
    def waiting(self) -> Sequence[CallbackRecord]: ...
    @property
    def agents_in_flight(self) -> set[str]: ...


class PbxUnavailable(Exception):
    """The PBX's AMI session is down: the action was not sent."""


class OriginateUnconfirmed(Exception):
    """The Originate was written, but no Response came (in time, or before the link dropped):
    the PBX may well ring the agent, so it must not be sent again."""


class PbxActions(Protocol):
    """What call-backs ask of the PBXs (the daemon has it: each PBX's AMI client)."""

    def is_up(self, pbx: str) -> bool:
        """Logged in and answering pings."""
        ...

    async def originate(self, pbx: str, fields: Mapping[str, str]) -> str | None:
        """Send an Originate; None when the PBX queued it, else its Message (refused).
        Raises PbxUnavailable when the session is down (nothing sent), OriginateUnconfirmed
        when it was sent but not answered."""
        ...


class CallbackDesk(Protocol):
    """What the card and the API need of call-backs and presence (app.callbacks has it).

    The daemon hands one to the web app only when [callback] enabled = true; without it the
    card shows no button and the call-back and preferred-agent routes answer 404.
    """

    def presence(self, agent_id: str) -> Presence:
        """The agent's state now, from the PBX's device and queue events."""
        ...

    async def request(self, code: str) -> CallbackView | None:
        """The customer tapped "call me back" on the card of `code`: place it now, queue it
        until the agent is free, or refuse it (outside hours, a limit); None for a code that
        is not a live link. Recorded whatever the answer."""
        ...

    async def latest(self, code: str) -> CallbackView | None:
        """The link's most recent call-back, for the card to show how it went."""
        ...

    async def preferred_agent(self, number: str) -> PreferredAgent:
        """The agent of the number's latest live link (E.164), and whether they are free."""
        ...
