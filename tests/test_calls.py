"""The call tracker against real Asterisk 20 transcripts."""

from __future__ import annotations

from ccshortlink.calls import CallEnded, CallTracker, SendRequested, default_agent_lookup

from transcripts import events_of

AGENTS = {"1001", "1002"}


def tracker(**kwargs: object) -> CallTracker:
    return CallTracker(default_agent_lookup(AGENTS.__contains__), **kwargs)  # type: ignore[arg-type]


def replay(events: list[dict[str, str]], t: CallTracker | None = None, step: float = 0.5) -> list:
    t = t or tracker()
    out = []
    for i, event in enumerate(events):
        out.extend(t.handle(event, 1000.0 + i * step))
    return out


def test_direct_dial_answered_customer_hangup_gives_one_call_ended() -> None:
    t = tracker()
    out = replay(events_of("01-sip-answered-customer-hangup.txt"), t)
    assert out == [CallEnded(linkedid="1795460028.0", agent_extension="1001",
                             customer_number="+8613800138000", talk_seconds=out[0].talk_seconds)]
    # the Cdr's BillableSeconds (2) arrives before the Hangup and is trusted
    assert out[0].talk_seconds >= 2
    assert t.active_channels == 0


def test_ring_no_answer_abandon_gives_nothing() -> None:
    t = tracker()
    assert replay(events_of("03-sip-ring-no-answer-abandon.txt"), t) == []
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


def test_events_of_an_unknown_agent_give_nothing() -> None:
    t = CallTracker(default_agent_lookup({"2001"}.__contains__))
    assert replay(events_of("01-sip-answered-customer-hangup.txt"), t) == []


def test_channels_whose_hangup_never_comes_are_evicted() -> None:
    t = tracker(call_timeout=60.0)
    events = [e for e in events_of("01-sip-answered-customer-hangup.txt") if e["Event"] != "Hangup"]
    replay(events, t)
    assert t.active_channels == 2
    assert t.evict(1000.0 + len(events)) == []
    assert t.evict(5000.0) == ["1795460028.0"]
    assert t.active_channels == 0
