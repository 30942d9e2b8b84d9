"""The domain's words: what started a decision, what was decided, where an SMS stands.

Each member is the string stored in the database, logged, shown by `trace`/`stats` and
returned by the API (a StrEnum member equals its string), so none of these values may change.
"""

from __future__ import annotations

from enum import StrEnum


class Trigger(StrEnum):
    """What asked for a card."""

    HANGUP = "hangup"  # the agent's call ended
    FEATURE_CODE = "feature_code"  # the agent dialled the feature code during or after a call
    API = "api"
    CLI = "cli"
    # A call closed without a card, for the reason named:
    PBX_RESTART = "pbx_restart"
    NO_CDR = "no_cdr"
    NOT_ANSWERED = "not_answered"
    EVICTED = "evicted"
    CALL_TIMEOUT = "call_timeout"


# Written by versions that tracked queue calls apart; never produced now, but old rows still
# hold it, so the card's counts and `trace` read it back.
OLD_QUEUE_TRIGGER = "agent_complete"


class Verdict(StrEnum):
    """The policy's answer for one call."""

    SEND = "send"
    DEFER = "defer"  # until quiet hours end
    SKIP = "skip"


class DecisionOutcome(StrEnum):
    """A decision as stored: the verdict once the outbox has it."""

    SENT = "sent"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


class SendStatus(StrEnum):
    """What a send request (API, CLI) is told."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    REFUSED = "refused"  # the API's word for skipped, or an unknown agent


class LinkStatus(StrEnum):
    """Whether a card link still opens the card."""

    LIVE = "live"
    EXPIRED = "expired"
    REVOKED = "revoked"


class SmsStatus(StrEnum):
    """Where one SMS stands in the outbox."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"


class ReplyKind(StrEnum):
    """What a customer's SMS to us asks for, once normalised and matched against the words."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    OTHER = "other"  # recorded, never answered


class SmsKind(StrEnum):
    """What an SMS in the outbox is: an agent's card, or an automatic answer to a reply."""

    CARD = "card"
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    OPT_IN_CONFIRMATION = "opt_in_confirmation"
    HELP_REPLY = "help_reply"
    MISSED_CALL = "missed_call"  # [policy] missed_call_sms: the hotline, no agent link


class CallbackState(StrEnum):
    """Where a customer's "call me back" stands (the card, `trace` and `stats` show it)."""

    WAITING = "waiting"  # the agent is busy (or the PBX link is down): placed once free
    CALLING_AGENT = "calling_agent"  # the Originate is out: the agent's phone rings
    CALLING_CUSTOMER = "calling_customer"  # the agent answered: the customer's phone rings
    CONNECTED = "connected"  # the customer answered: they are talking
    DONE = "done"  # they talked and hung up (talk time recorded)
    AGENT_MISSED = "agent_missed"  # the agent did not answer in time
    CUSTOMER_MISSED = "customer_missed"  # the customer did not answer ("could not reach you")
    EXPIRED = "expired"  # waited longer than [callback] max_wait_minutes for a free agent
    FAILED = "failed"  # the PBX refused or lost the Originate (the reason is recorded)
    REFUSED = "refused"  # never placed: outside hours, a limit, opted out (the reason says)


class Presence(StrEnum):
    """An agent's state as the PBX's device and queue events tell it."""

    FREE = "free"
    BUSY = "busy"  # on a call, ringing or on hold
    AWAY = "away"  # unregistered, unavailable or paused in every queue
    UNKNOWN = "unknown"  # no event about the agent's devices yet: a call-back is placed at once
