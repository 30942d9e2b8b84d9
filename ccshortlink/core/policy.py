"""Who gets an SMS and when: number checks, talk time, opt-out, resend window, cap, quiet hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as number_timezone

from ccshortlink.core.calls import clean_number
from ccshortlink.core.vocab import Trigger, Verdict

# Extensions and short service numbers are internal, never a customer's mobile.
INTERNAL_MAX_DIGITS = 6
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


@dataclass(frozen=True)
class PolicyConfig:
    """The sending rules from `[policy]`: who gets a card, when, and how often."""

    min_talk_seconds: float = 5.0
    default_region: str = "CN"
    mobile_only: bool = True
    link_ttl_days: float = 30.0
    resend_window_hours: float = 24.0
    daily_cap_per_number: int = 3
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str = "Asia/Shanghai"
    card_on_transfer: str = "last"  # "last" agent only, or "all" agents bridged with the customer
    call_timeout_hours: float = 12.0  # evict calls whose last Hangup never arrives
    feature_code_window_minutes: float = 30.0
    max_live_channels: int = 20000  # the tracker evicts the oldest channel beyond this
    # Who gets a card at hangup (core/callrules.py); *55, the API and the CLI are not held back.
    directions: tuple[str, ...] = ("inbound", "outbound")
    queues_include: tuple[str, ...] = ()  # empty: every queue
    queues_exclude: tuple[str, ...] = ()
    missed_call_sms: bool = False  # an unanswered queue call gets the missed-call SMS


@dataclass(frozen=True)
class SendFacts:
    """What policy needs to know about earlier sends to a number."""

    opted_out: bool
    last_pair_sms_at: float | None
    sms_since_day_start: int


@dataclass(frozen=True)
class CustomerNumber:
    e164: str
    region: str
    time_zone: str


@dataclass(frozen=True)
class NumberRejected:
    reason: str


@dataclass(frozen=True)
class Decision:
    """`send` now, `defer` until `not_before`, or `skip` with a reason."""

    outcome: Verdict
    reason: str
    not_before: float


# A customer who calls back within minutes, or replies STOP, brings the same number again,
# and a phonenumbers parse is the costly part of a decision; the inputs are frozen. Kept
# small: a few hundred KiB at most, so memory stays flat however many numbers go by.
@lru_cache(maxsize=1024)
def normalise_number(raw: str, policy: PolicyConfig) -> CustomerNumber | NumberRejected:
    """E.164 for a caller ID as Asterisk gives it, or the reason it gets no SMS."""
    text = clean_number(raw)
    if not text:
        return NumberRejected("no caller number (anonymous or withheld)")
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits or any(ch.isalpha() for ch in text):
        return NumberRejected("caller number is not a number")
    if len(digits) <= INTERNAL_MAX_DIGITS and not text.startswith("+"):
        return NumberRejected("internal number (extension length)")
    candidates = [text]
    if not text.startswith(("+", "0")):
        candidates.append("+" + digits)  # "8613800138000": a country code without the plus
    parsed = None
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, policy.default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            parsed = number
            break
    if parsed is None:
        return NumberRejected("not a valid phone number")
    if policy.mobile_only and phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        return NumberRejected("not a mobile number")
    zones = [z for z in number_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    return CustomerNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(parsed) or "",
        time_zone=zones[0] if zones else policy.timezone,
    )


def day_start(now: float, time_zone: str) -> float:
    """Midnight today in the recipient's zone, as a Unix time."""
    local = datetime.fromtimestamp(now, ZoneInfo(time_zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def quiet_until(now: float, time_zone: str, policy: PolicyConfig) -> float | None:
    """When quiet hours end, if `now` falls inside them in the recipient's zone."""
    if policy.quiet_start is None or policy.quiet_end is None:
        return None
    local = datetime.fromtimestamp(now, ZoneInfo(time_zone))
    start, end, t = policy.quiet_start, policy.quiet_end, local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until.timestamp()


def decide(*, trigger: Trigger, talk_seconds: float | None, card_already_sent: bool,
           facts: SendFacts, customer: CustomerNumber, policy: PolicyConfig,
           now: float) -> Decision:
    """The whole rule book, in the order an operator would explain it."""
    if trigger == Trigger.HANGUP and (talk_seconds or 0.0) < policy.min_talk_seconds:
        return Decision(Verdict.SKIP, f"talk time {talk_seconds or 0:.0f}s below minimum "
                                      f"{policy.min_talk_seconds:g}s", now)
    if card_already_sent:
        return Decision(Verdict.SKIP, "card already sent during this call by the agent", now)
    if facts.opted_out:
        return Decision(Verdict.SKIP, "number opted out (on the do-not-send list)", now)
    if (facts.last_pair_sms_at is not None
            and now - facts.last_pair_sms_at < policy.resend_window_hours * 3600):
        return Decision(Verdict.SKIP, f"same agent texted this number within "
                                      f"{policy.resend_window_hours:g}h", now)
    if facts.sms_since_day_start >= policy.daily_cap_per_number:
        return Decision(Verdict.SKIP,
                        f"daily cap of {policy.daily_cap_per_number} SMS reached", now)
    until = quiet_until(now, customer.time_zone, policy)
    if until is not None:
        local = datetime.fromtimestamp(until, ZoneInfo(customer.time_zone))
        return Decision(Verdict.DEFER, f"quiet hours in {customer.time_zone}, deferred to "
                                       f"{local:%H:%M}", until)
    return Decision(Verdict.SEND, "", now)
