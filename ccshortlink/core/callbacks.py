"""Call-back rules: may a request be placed now, the Originate's fields, and how it went."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import phonenumbers

from ccshortlink.core.hours import Hours
from ccshortlink.core.vocab import CallbackState, Presence

ACTION_PREFIX = "ccs-cb-"  # ActionID of a call-back's Originate: any daemon knows its answer
IN_FLIGHT = (CallbackState.CALLING_AGENT, CallbackState.CALLING_CUSTOMER,
             CallbackState.CONNECTED)
ACTIVE = (CallbackState.WAITING, *IN_FLIGHT)  # a second request returns this one
FINAL = tuple(s for s in CallbackState if s not in ACTIVE)
# OriginateResponse Reason (Asterisk's AST_CONTROL_*): what the agent's phone did.
# The agent's phone was busy or congested: worth another try while the request may wait.
RETRIED_REASONS = ("busy", "congested")
_AGENT_REASONS = {"0": "no_such_channel", "1": "no_answer", "3": "no_answer",
                  "5": "busy", "8": "congested"}


@dataclass(frozen=True)
class CallbackRecord:
    """A call-back as stored, with what placing it needs (the link's number: never logged)."""

    id: int
    link_id: int
    agent_id: str
    pbx: str
    state: CallbackState
    reason: str
    requested_at: float
    customer_number: str
    opens_at: float | None = None
    talk_seconds: int | None = None
    created: bool = True  # False: the link's call-back already waiting or in progress


@dataclass(frozen=True)
class Refusal:
    """Why a request is not placed: a short word, and when to try again if it is the hours."""

    reason: str
    opens_at: float | None = None


@dataclass(frozen=True)
class Claim:
    """What claiming a waiting call-back came to: ours to place now; refused now (its link is
    no longer live, its number opted out meanwhile); or neither (another daemon took it, or
    its agent is on another call-back)."""

    ours: bool
    refusal: Refusal | None = None

    def __bool__(self) -> bool:
        return self.ours


def hours_refusal(hours: Hours, now: float, zone: ZoneInfo) -> Refusal | None:
    """Outside the agent's working hours: refused with when they next begin."""
    if hours.is_open(now, zone):
        return None
    return Refusal("outside_hours", hours.next_opening(now, zone))


def may_place(presence: Presence, pbx_up: bool) -> bool:
    """A waiting call-back is placed once the agent is free (or nothing is known of them)
    and the PBX link is up."""
    return pbx_up and presence in (Presence.FREE, Presence.UNKNOWN)


def has_expired(requested_at: float, now: float, max_wait_minutes: int) -> bool:
    return now - requested_at >= max_wait_minutes * 60


def action_id(callback_id: int) -> str:
    return f"{ACTION_PREFIX}{callback_id}"


def callback_of_action(action: str) -> int | None:
    """The call-back id in an ActionID of ours, else None."""
    if not action.startswith(ACTION_PREFIX):
        return None
    digits = action[len(ACTION_PREFIX):]
    return int(digits) if digits.isdecimal() else None


def number_forms(e164: str) -> dict[str, str]:
    """{number} +8613800138000, {digits} 8613800138000, {national} the national significant
    number (13800138000; UK 7911123456), {dial} the number as dialled within its country,
    trunk prefix and all (UK 07911123456, Italy 0612345678, Beijing 01012345678)."""
    parsed = phonenumbers.parse(e164)
    dialled = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return {"number": e164, "digits": e164.lstrip("+"),
            "national": phonenumbers.national_significant_number(parsed),
            "dial": "".join(c for c in dialled if c.isdigit())}


def originate_fields(*, callback_id: int, extension: str, number: str, agent_channel: str,
                     customer_context: str, customer_exten: str, caller_id: str,
                     ring_agent_seconds: int, channel: str = "") -> dict[str, str]:
    """The AMI Originate that rings the agent, then (the dialplan) the customer. `channel`:
    the agent's own channel name (PJSIP/desk-ann), a dial string already, rung as it is
    instead of agent_channel with `extension`."""
    return {
        "Action": "Originate",
        "ActionID": action_id(callback_id),
        "Channel": channel or agent_channel.format(extension=extension),
        "Context": customer_context,
        "Exten": customer_exten.format_map(number_forms(number)),
        "Priority": "1",
        "CallerID": caller_id,
        "Timeout": str(ring_agent_seconds * 1000),
        "Async": "true",
        "Variable": f"CCS_CALLBACK={callback_id}",
    }


@dataclass(frozen=True)
class Step:
    """A call-back moved on: its new state, and what the event told of it."""

    callback_id: int
    state: CallbackState
    reason: str = ""
    talk_seconds: int | None = None
    channel: str = ""  # the agent's channel (OriginateResponse Success)
    linkedid: str = ""


@dataclass
class _Call:
    state: CallbackState = CallbackState.CALLING_AGENT
    uniqueid: str = ""
    connected_at: float | None = None


@dataclass
class CallbackCalls:
    """Follows the call-backs this daemon placed through their AMI events (pure: no I/O)."""

    _calls: dict[int, _Call] = field(default_factory=dict)
    _by_uniqueid: dict[str, int] = field(default_factory=dict)

    def placed(self, callback_id: int) -> None:
        self._calls[callback_id] = _Call()

    def in_flight(self) -> list[int]:
        return list(self._calls)

    def drop(self, callback_id: int) -> None:
        call = self._calls.pop(callback_id, None)
        if call is not None:
            self._by_uniqueid.pop(call.uniqueid, None)

    def on_event(self, event: Mapping[str, str], now: float) -> Step | None:
        name = event.get("Event", "")
        if name == "OriginateResponse":
            return self._on_originate_response(event)
        callback_id = self._by_uniqueid.get(event.get("Uniqueid", ""))
        if callback_id is None:
            return None
        call = self._calls[callback_id]
        if name == "DialEnd" and call.state == CallbackState.CALLING_CUSTOMER:
            status = event.get("DialStatus", "").upper()
            if status == "ANSWER":
                call.state, call.connected_at = CallbackState.CONNECTED, now
                return Step(callback_id, CallbackState.CONNECTED)
            return self._end(callback_id, CallbackState.CUSTOMER_MISSED,
                             status.lower() or "no_answer")
        if name == "Hangup":
            if call.state == CallbackState.CONNECTED:
                # From the customer's answer: the Cdr's BillableSeconds count from the
                # agent's, with the customer's ringing in them (recorded, 10-originate-*).
                talk = max(0, round(now - (call.connected_at or now)))
                return self._end(callback_id, CallbackState.DONE, "", talk)
            return self._end(callback_id, CallbackState.CUSTOMER_MISSED, "hangup")
        return None

    def _on_originate_response(self, event: Mapping[str, str]) -> Step | None:
        callback_id = callback_of_action(event.get("ActionID", ""))
        if callback_id is None or callback_id not in self._calls:
            return None
        call = self._calls[callback_id]
        if event.get("Response", "") == "Success":
            call.state, call.uniqueid = CallbackState.CALLING_CUSTOMER, event.get("Uniqueid", "")
            self._by_uniqueid[call.uniqueid] = callback_id
            return Step(callback_id, CallbackState.CALLING_CUSTOMER,
                        channel=event.get("Channel", ""), linkedid=event.get("Uniqueid", ""))
        reason = _AGENT_REASONS.get(event.get("Reason", ""), "reason_" + event.get("Reason", ""))
        state = CallbackState.FAILED if reason in ("no_such_channel", "congested") \
            else CallbackState.AGENT_MISSED
        return self._end(callback_id, state, reason)

    def _end(self, callback_id: int, state: CallbackState, reason: str,
             talk: int | None = None) -> Step:
        self.drop(callback_id)
        return Step(callback_id, state, reason, talk)

