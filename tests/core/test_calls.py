"""The call tracker against real Asterisk 20 transcripts."""

from __future__ import annotations

import random

import pytest

from ccshortlink.core.calls import (
    CallClosed,
    CallEnded,
    CallTracker,
    SendRequested,
    default_agent_lookup,
)
from ccshortlink.core.vocab import Trigger
from ccshortlink.peers.amipeer import read_transcript, rewrite_call
from tests.support import scenarios
from tests.support.transcripts import FIXTURES, events_of, frames_of

AGENTS = {"1001", "1002"}


def tracker(**kwargs: object) -> CallTracker:
    return CallTracker(default_agent_lookup(AGENTS.__contains__), **kwargs)  # type: ignore[arg-type]


def replay(events: list[dict[str, str]], t: CallTracker | None = None, step: float = 0.5) -> list:
    t = t or tracker()
    out = []
    for i, event in enumerate(events):
        out.extend(t.handle(event, 1000.0 + i * step))
    return out


def cards(outcomes: list) -> list:
    """What may lead to an SMS: everything but the calls closed without one."""
    return [o for o in outcomes if not isinstance(o, CallClosed)]


def unanswered(outcomes: list) -> list[str]:
    """The customers of calls no agent answered: recorded (trace shows them), no SMS."""
    return [o.customer_number for o in outcomes
            if isinstance(o, CallClosed) and o.trigger == Trigger.NOT_ANSWERED]


def test_direct_dial_answered_customer_hangup_gives_one_call_ended() -> None:
    t = tracker()
    out = replay(events_of("01-sip-answered-customer-hangup.txt"), t)
    assert out == [CallEnded(linkedid="1795460028.0", agent_extension="1001",
                             customer_number="+8613800138000", talk_seconds=out[0].talk_seconds)]
    # the Cdr's BillableSeconds (2) arrives before the Hangup and is trusted
    assert out[0].talk_seconds >= 2
    assert t.active_channels == 0


def test_ring_no_answer_abandon_gives_no_card_and_is_recorded() -> None:
    t = tracker()
    out = replay(events_of("03-sip-ring-no-answer-abandon.txt"), t)
    assert cards(out) == []
    assert unanswered(out) == ["+8613800138000"]
    assert t.active_channels == 0


def test_queue_ringall_only_the_answering_member_counts() -> None:
    out = replay(events_of("04-queue-sip-members-answered.txt"))
    assert [(o.agent_extension, o.customer_number) for o in out] == [("1001", "+8613800138000")]
    assert out[0].linkedid == "1795460051.6"
    assert out[0].talk_seconds >= 3  # AgentComplete TalkTime


def test_local_originate_without_agent_gives_nothing() -> None:
    assert replay(events_of("06-local-originate.txt")) == []


def test_feature_code_after_a_call_goes_to_that_customer() -> None:
    t = tracker()
    first = replay(events_of("01-sip-answered-customer-hangup.txt"), t)
    assert len(first) == 1
    out = replay(events_of("05-userevent-sendcard.txt"), t)
    assert out == [SendRequested(agent_extension="1001", customer_number="+8613800138000",
                                 linkedid="1795460028.0")]


def test_feature_code_with_no_recent_call_names_the_reason() -> None:
    out = replay(events_of("05-userevent-sendcard.txt"))
    assert len(out) == 1 and out[0].customer_number == "" and out[0].reason


def test_feature_code_window_expires() -> None:
    t = tracker(feature_code_window=60.0)
    replay(events_of("01-sip-answered-customer-hangup.txt"), t)
    late = [t.handle(e, 10_000.0) for e in events_of("05-userevent-sendcard.txt")]
    assert [o for batch in late for o in batch][0].customer_number == ""


def test_explicit_number_in_user_event_wins() -> None:
    events = events_of("05-userevent-sendcard.txt")
    for e in events:
        if e.get("Event") == "UserEvent":
            e["Number"] = "13912345678"
    out = replay(events)
    assert out == [SendRequested("1001", "13912345678", "1795460078.19")]


def test_unknown_events_and_missing_fields_are_ignored() -> None:
    t = tracker()
    assert t.handle({"Event": "PeerStatus", "Peer": "SIP/1001"}, 1.0) == []
    assert t.handle({"Event": "Hangup"}, 1.0) == []
    assert t.handle({"Event": "BridgeEnter", "Channel": "SIP/x-1"}, 1.0) == []
    assert t.handle({}, 1.0) == []


def test_events_of_an_unknown_agent_give_no_card() -> None:
    t = CallTracker(default_agent_lookup({"2001"}.__contains__))
    out = replay(events_of("01-sip-answered-customer-hangup.txt"), t)
    assert cards(out) == []
    assert unanswered(out) == ["+8613800138000"]  # no agent of ours took it


def test_channels_whose_hangup_never_comes_are_evicted() -> None:
    t = tracker(call_timeout=60.0)
    events = [e for e in events_of("01-sip-answered-customer-hangup.txt") if e["Event"] != "Hangup"]
    replay(events, t)
    assert t.active_channels == 2
    assert t.evict(1000.0 + len(events)) == []
    assert t.evict(5000.0) == ["1795460028.0"]
    assert t.active_channels == 0


# --- beyond the recordings: synthetic calls shaped like them ----------------------------------


@pytest.mark.parametrize("agent_channel", ["SIP/1001-0000a1", "PJSIP/1001-0000002a",
                                           "IAX2/1001-12345"])
@pytest.mark.parametrize("agent_hangs_up", [False, True])
def test_direct_call_any_technology_either_side_hangs_up(agent_channel: str,
                                                         agent_hangs_up: bool) -> None:
    s = scenarios.direct_call("13800138000", agent_channel, agent_hangs_up=agent_hangs_up)
    out = replay(s.events)
    assert [(o.agent_extension, o.customer_number) for o in out] == [("1001", "13800138000")]


def test_unusual_channel_names_map_through_the_channel_map() -> None:
    s = scenarios.direct_call("13800138000", "PJSIP/desk-ann-0000002a", agent_hangs_up=False)
    for e in s.events:  # the desk phone does not present the extension as its caller id
        for key in ("CallerIDNum", "DestCallerIDNum"):
            if e.get(key) == "1001":
                e[key] = "Ann"
    assert cards(replay(s.events)) == []
    t = CallTracker(default_agent_lookup(AGENTS.__contains__, {"PJSIP/desk-ann": "1001"}))
    assert [o.agent_extension for o in replay(s.events, t)] == ["1001"]


@pytest.mark.parametrize("optimised", [False, True])
def test_freepbx_local_channel_queue_members(optimised: bool) -> None:
    s = scenarios.freepbx_queue_call("13800138000", optimised=optimised, answering="1002")
    out = replay(s.events)
    assert [(o.agent_extension, o.customer_number) for o in out] == [("1002", "13800138000")]
    assert out[0].talk_seconds >= 42  # AgentComplete TalkTime via the Local interface


def test_blind_transfer_names_the_last_agent() -> None:
    out = replay(scenarios.blind_transfer("13800138000").events)
    assert [o.agent_extension for o in out] == ["1002"]
    everyone = replay(scenarios.blind_transfer("13800138000").events,
                      tracker(card_on_transfer="all"))
    assert sorted(o.agent_extension for o in everyone) == ["1001", "1002"]


def test_attended_transfer_names_the_last_agent_under_the_customers_call() -> None:
    s = scenarios.attended_transfer("13800138000")
    out = replay(s.events)
    assert [(o.agent_extension, o.linkedid) for o in out] == [("1002", s.events[0]["Linkedid"])]


def test_feature_code_during_a_call_marks_it_so_the_hangup_does_not_send_again() -> None:
    s = scenarios.direct_call("13800138000", "SIP/1001-0000a1", agent_hangs_up=False)
    t = tracker()
    middle = next(i for i, e in enumerate(s.events) if e["Event"] == "BridgeLeave")
    replay(s.events[:middle], t)
    request = t.handle({"Event": "UserEvent", "UserEvent": "SendCard", "Agent": "1001",
                        "Channel": "SIP/1001-0000ff", "Uniqueid": "9.9", "Linkedid": "9.9"}, 1.0)
    assert request == [SendRequested("1001", "13800138000", s.events[0]["Linkedid"])]
    out = replay(s.events[middle:], t)
    assert len(out) == 1 and out[0].card_already_sent


def test_thousands_of_interleaved_real_shaped_calls() -> None:
    _, answered = read_transcript(FIXTURES / "01-sip-answered-customer-hangup.txt")
    _, abandoned = read_transcript(FIXTURES / "03-sip-ring-no-answer-abandon.txt")
    _, queue = read_transcript(FIXTURES / "04-queue-sip-members-answered.txt")
    rng = random.Random(7)
    calls, expected = [], set()
    for index in range(1200):
        kind = rng.choice(["answered", "abandoned", "queue"])
        number = f"+86139{index:08d}"
        source = {"answered": answered, "abandoned": abandoned, "queue": queue}[kind]
        calls.append(rewrite_call(source, index=index, customer_number=number))
        if kind != "abandoned":
            expected.add(number)
    from ccshortlink.peers.amipeer import interleave

    stream = interleave(calls, seed=3)
    events = [f for frame in stream for f in frames_of(frame.decode()) if "Event" in f]
    t = tracker()
    out = cards(replay(events, t, step=0.001))
    assert len(out) == len(expected)
    assert {o.customer_number for o in out} == expected
    assert all(o.agent_extension == "1001" for o in out)
    assert t.active_channels == 0


@pytest.mark.parametrize("script", [scenarios.voicemail_call, scenarios.queue_abandon])
def test_voicemail_and_queue_abandon_give_no_card(script) -> None:  # type: ignore[no-untyped-def]
    t = tracker()
    out = replay(script("13800138000").events, t)
    assert cards(out) == []
    assert unanswered(out) == ["13800138000"]
    assert t.active_channels == 0
