"""Call-back rules: working hours, presence from PBX events, the Originate, the call's steps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ccshortlink.core.callbacks import (
    CallbackCalls,
    callback_of_action,
    has_expired,
    hours_refusal,
    may_place,
    originate_fields,
)
from ccshortlink.core.hours import HoursError, parse_hours
from ccshortlink.core.presence import PresenceBook, presence_of_event
from ccshortlink.core.vocab import CallbackState, Presence

ZONE = ZoneInfo("Asia/Shanghai")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


# --- working hours ---------------------------------------------------------------------------

def test_hours_open_and_next_opening() -> None:
    hours = parse_hours("Mon-Fri 09:00-18:00; Sat 10:00-14:00")
    assert hours.is_open(at("2026-12-07 09:00"), ZONE)  # a Monday
    assert not hours.is_open(at("2026-12-07 18:00"), ZONE)
    assert hours.next_opening(at("2026-12-07 19:30"), ZONE) == at("2026-12-08 09:00")
    assert hours.next_opening(at("2026-12-11 18:30"), ZONE) == at("2026-12-12 10:00")  # Fri→Sat
    assert hours.next_opening(at("2026-12-12 15:00"), ZONE) == at("2026-12-14 09:00")  # Sat→Mon
    assert hours.next_opening(at("2026-12-08 07:00"), ZONE) == at("2026-12-08 09:00")


def test_no_hours_is_always_open_and_wrapping_ranges() -> None:
    assert parse_hours("").is_open(at("2026-12-13 03:00"), ZONE)
    weekend = parse_hours("Sat-Sun 00:00-24:00")
    assert weekend.is_open(at("2026-12-13 23:59"), ZONE)
    assert not weekend.is_open(at("2026-12-14 00:00"), ZONE)
    assert parse_hours("Sun-Mon 08:00-09:00").is_open(at("2026-12-14 08:30"), ZONE)


@pytest.mark.parametrize(("text", "says"), [
    ("Mon-Fri 9-18", "is not like"), ("Mon-Fry 09:00-18:00", "'Fry' is not a day"),
    ("Mon 18:00-09:00", "end must come after"), ("Mon 09:00-25:00", "not a time of day"),
])
def test_bad_hours_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(HoursError, match=says):
        parse_hours(text)


def test_outside_hours_is_refused_with_the_next_opening() -> None:
    hours = parse_hours("Mon-Fri 09:00-18:00")
    refusal = hours_refusal(hours, at("2026-12-07 20:00"), ZONE)
    assert refusal is not None and refusal.reason == "outside_hours"
    assert refusal.opens_at == at("2026-12-08 09:00")
    assert hours_refusal(hours, at("2026-12-07 10:00"), ZONE) is None


# --- presence --------------------------------------------------------------------------------

def frame(text: str) -> dict[str, str]:
    """An AMI event as Asterisk writes it (CRLF lines of "Key: value")."""
    return dict(line.split(": ", 1) for line in text.strip().split("\r\n"))


DEVICE = "Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/1001\r\nState: {}"
EXTENSION = ("Event: ExtensionStatus\r\nPrivilege: call,all\r\nExten: 1001\r\n"
             "Context: ext-local\r\nHint: PJSIP/1001&Custom:DND1001\r\nStatus: {}\r\n"
             "StatusText: {}")
MEMBER = ("Event: QueueMemberStatus\r\nPrivilege: agent,all\r\nQueue: support\r\n"
          "MemberName: Agent 1001\r\nInterface: Local/1001@from-queue/n\r\n"
          "StateInterface: SIP/1001\r\nMembership: dynamic\r\nPenalty: 0\r\nCallsTaken: 3\r\n"
          "LastCall: 1795460084\r\nLastPause: 0\r\nInCall: 0\r\nStatus: {}\r\nPaused: {}\r\n"
          "PausedReason: \r\nRinginuse: 0\r\nWrapuptime: 0")


@pytest.mark.parametrize(("state", "presence"), [
    ("NOT_INUSE", Presence.FREE), ("INUSE", Presence.BUSY), ("RINGING", Presence.BUSY),
    ("ONHOLD", Presence.BUSY), ("UNAVAILABLE", Presence.AWAY), ("UNKNOWN", Presence.UNKNOWN),
])
def test_device_state_changes(state: str, presence: Presence) -> None:
    assert presence_of_event(frame(DEVICE.format(state))) == ("1001", presence)


@pytest.mark.parametrize(("status", "presence"), [
    ("0", Presence.FREE), ("1", Presence.BUSY), ("9", Presence.BUSY), ("16", Presence.BUSY),
    ("4", Presence.AWAY), ("-1", Presence.UNKNOWN)])
def test_extension_status(status: str, presence: Presence) -> None:
    assert presence_of_event(frame(EXTENSION.format(status, "x"))) == ("1001", presence)


def test_queue_member_status_and_pause() -> None:
    assert presence_of_event(frame(MEMBER.format(1, 0))) == ("1001", Presence.FREE)
    assert presence_of_event(frame(MEMBER.format(2, 0))) == ("1001", Presence.BUSY)
    assert presence_of_event(frame(MEMBER.format(1, 1))) == ("1001", Presence.AWAY)
    assert presence_of_event({"Event": "Hangup", "Channel": "SIP/1001-1"}) is None


def test_an_agent_is_the_best_of_its_devices_per_pbx() -> None:
    book = PresenceBook()
    assert book.of("a", ["1001"]) == Presence.UNKNOWN
    book.on_event("a", frame(DEVICE.format("NOT_INUSE")))
    book.on_event("a", {"Event": "DeviceStateChange", "Device": "SIP/2001",
                        "State": "UNAVAILABLE"})
    assert book.of("a", ["1001", "2001"]) == Presence.FREE
    assert book.of("b", ["1001"]) == Presence.UNKNOWN  # another PBX's 1001
    book.on_event("a", {"Event": "DeviceStateChange", "Device": "SIP/2001", "State": "INUSE"})
    assert book.of("a", ["1001", "2001"]) == Presence.BUSY
    book.forget("a")
    assert book.of("a", ["1001"]) == Presence.UNKNOWN


def test_a_paused_queue_member_stays_away_until_unpaused_whatever_the_phone_says() -> None:
    book = PresenceBook()
    book.on_event("a", frame(MEMBER.format(1, 1)))  # paused in "support", the phone idle
    assert book.of("a", ["1001"]) == Presence.AWAY
    book.on_event("a", frame(DEVICE.format("NOT_INUSE")))
    book.on_event("a", frame(EXTENSION.format(0, "Idle")))
    assert book.of("a", ["1001"]) == Presence.AWAY  # still paused: not to be rung
    sales = frame(MEMBER.format(1, 0)) | {"Queue": "sales"}
    book.on_event("a", sales)
    assert book.of("a", ["1001"]) == Presence.FREE  # takes calls from "sales"
    book.on_event("a", sales | {"Event": "QueueMemberPause", "Paused": "1"})
    assert book.of("a", ["1001"]) == Presence.AWAY
    book.on_event("a", frame(MEMBER.format(1, 0)))  # unpaused in "support"
    book.on_event("a", sales | {"Event": "QueueMemberRemoved"})
    assert book.of("a", ["1001"]) == Presence.FREE
    book.on_event("a", frame(DEVICE.format("INUSE")))  # busy anywhere is busy
    assert book.of("a", ["1001"]) == Presence.BUSY
    book.on_event("a", frame(MEMBER.format(1, 1)))
    assert book.of("a", ["1001"]) == Presence.BUSY


def test_dnd_through_the_hint_is_busy_though_the_phone_is_idle() -> None:
    book = PresenceBook()
    book.on_event("a", frame(DEVICE.format("NOT_INUSE")))
    book.on_event("a", frame(EXTENSION.format(2, "Busy")))  # Custom:DND1001 is BUSY
    book.on_event("a", frame(DEVICE.format("NOT_INUSE")))  # the phone itself stays idle
    assert book.of("a", ["1001"]) == Presence.BUSY
    book.on_event("a", frame(EXTENSION.format(0, "Idle")))
    assert book.of("a", ["1001"]) == Presence.FREE


def test_placing_waits_for_a_free_or_unknown_agent_and_an_up_pbx() -> None:
    assert may_place(Presence.FREE, True) and may_place(Presence.UNKNOWN, True)
    assert not may_place(Presence.BUSY, True) and not may_place(Presence.AWAY, True)
    assert not may_place(Presence.FREE, False)
    assert has_expired(0, 30 * 60, 30) and not has_expired(0, 30 * 60 - 1, 30)


# --- the Originate and the call --------------------------------------------------------------

def test_originate_fields() -> None:
    fields = originate_fields(callback_id=7, extension="1001", number="+8613800138000",
                              agent_channel="PJSIP/{extension}", customer_context="from-internal",
                              customer_exten="0{national}", caller_id="4008001234",
                              ring_agent_seconds=30)
    assert fields == {"Action": "Originate", "ActionID": "ccs-cb-7", "Channel": "PJSIP/1001",
                      "Context": "from-internal", "Exten": "013800138000", "Priority": "1",
                      "CallerID": "4008001234", "Timeout": "30000", "Async": "true",
                      "Variable": "CCS_CALLBACK=7"}
    digits = originate_fields(callback_id=7, extension="1001", number="+8613800138000",
                              agent_channel="SIP/{extension}", customer_context="c",
                              customer_exten="00{digits}", caller_id="", ring_agent_seconds=5)
    assert digits["Exten"] == "008613800138000" and digits["Channel"] == "SIP/1001"
    assert callback_of_action("ccs-cb-12") == 12 and callback_of_action("orig-1") is None


@pytest.mark.parametrize(("number", "national", "dial"), [
    ("+447911123456", "7911123456", "07911123456"),  # UK mobile: trunk prefix 0
    ("+4915112345678", "15112345678", "015112345678"),
    ("+390612345678", "0612345678", "0612345678"),  # Italian landline: its 0 is no prefix
    ("+8613800138000", "13800138000", "13800138000"),  # CN mobile: dialled without 0
    ("+861012345678", "1012345678", "01012345678"),  # Beijing landline: 010
    ("+12125551234", "2125551234", "2125551234"),
])
def test_dial_is_the_number_as_dialled_within_its_country(number: str, national: str,
                                                          dial: str) -> None:
    fields = originate_fields(callback_id=1, extension="1001", number=number,
                              agent_channel="PJSIP/{extension}", customer_context="c",
                              customer_exten="{national}/{dial}", caller_id="",
                              ring_agent_seconds=30)
    assert fields["Exten"] == f"{national}/{dial}"


def answered(calls: CallbackCalls, cid: int, uid: str = "1795.1") -> None:
    step = calls.on_event({"Event": "OriginateResponse", "ActionID": f"ccs-cb-{cid}",
                           "Response": "Success", "Channel": "PJSIP/1001-0001",
                           "Uniqueid": uid, "Reason": "4"}, 10.0)
    assert step is not None and step.state == CallbackState.CALLING_CUSTOMER
    assert step.channel == "PJSIP/1001-0001"


def test_a_call_back_that_connects_and_ends_with_its_talk_time() -> None:
    calls = CallbackCalls()
    calls.placed(1)
    assert calls.on_event({"Event": "OriginateResponse", "ActionID": "other"}, 0) is None
    answered(calls, 1)
    step = calls.on_event({"Event": "DialEnd", "Uniqueid": "1795.1", "DialStatus": "ANSWER"}, 20)
    assert step is not None and step.state == CallbackState.CONNECTED
    done = calls.on_event({"Event": "Hangup", "Uniqueid": "1795.1"}, 62.4)
    assert done is not None and (done.state, done.talk_seconds) == (CallbackState.DONE, 42)
    assert calls.in_flight() == []


@pytest.mark.parametrize(("reason", "state", "word"), [
    ("1", CallbackState.AGENT_MISSED, "no_answer"), ("5", CallbackState.AGENT_MISSED, "busy"),
    ("0", CallbackState.FAILED, "no_such_channel"), ("8", CallbackState.FAILED, "congested")])
def test_the_agent_not_answering(reason: str, state: CallbackState, word: str) -> None:
    calls = CallbackCalls()
    calls.placed(3)
    step = calls.on_event({"Event": "OriginateResponse", "ActionID": "ccs-cb-3",
                           "Response": "Failure", "Reason": reason, "Uniqueid": "<null>"}, 1)
    assert step is not None and (step.state, step.reason) == (state, word)
    assert calls.in_flight() == []


def test_the_customer_not_answering() -> None:
    calls = CallbackCalls()
    calls.placed(4)
    answered(calls, 4, "9.9")
    step = calls.on_event({"Event": "DialEnd", "Uniqueid": "9.9", "DialStatus": "NOANSWER"}, 50)
    assert step is not None and (step.state, step.reason) == (CallbackState.CUSTOMER_MISSED,
                                                              "noanswer")
    assert calls.on_event({"Event": "Hangup", "Uniqueid": "9.9"}, 51) is None
