"""The call tracker when either side restarts: a new Asterisk, or a daemon that missed the start."""

from __future__ import annotations

from typing import Any

import pytest

from ccshortlink.core.calls import (
    RESTART_REASON,
    CallClosed,
    CallEnded,
    CallTracker,
    SendRequested,
    default_agent_lookup,
)
from ccshortlink.core.pbxinstance import InstanceWatch, parse_uniqueid
from tests.support.transcripts import events_of

AGENTS = {"1001", "1002"}
OLD_CUSTOMER = "+8613800138000"
NEW_CUSTOMER = "+8613912345678"
ID_HEADERS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "UniqueID")


def tracker(**kwargs: object) -> CallTracker:
    return CallTracker(default_agent_lookup(AGENTS.__contains__), **kwargs)  # type: ignore[arg-type]


class Clock:
    """Feeds events to a tracker one second apart, as one AMI session or another."""

    def __init__(self, t: CallTracker) -> None:
        self.t, self.now = t, 1000.0

    def feed(self, events: list[dict[str, str]], session: int = 1) -> list[Any]:
        out: list[Any] = []
        for event in events:
            self.now += 1.0
            self.t.session(session)
            out.extend(self.t.handle(event, self.now))
        return out


def new_instance(events: list[dict[str, str]], epoch: int, *, uptime: str | None = None,
                 customer: str | None = None) -> list[dict[str, str]]:
    """The same events from an Asterisk that started again: ids count from 0 at `epoch`."""
    ids: dict[str, str] = {}
    out = []
    for event in events:
        if event["Event"] == "FullyBooted":
            if uptime is None:  # a user without the `system` read privilege never sees it
                continue
            event = {**event, "Uptime": uptime, "LastReload": uptime}
        event = dict(event)
        for name in ID_HEADERS:
            if name in event:
                event[name] = ids.setdefault(event[name], f"{epoch}.{len(ids)}")
        if customer is not None:
            event = {k: v.replace(OLD_CUSTOMER, customer) for k, v in event.items()}
        out.append(event)
    return out


def split(events: list[dict[str, str]], name: str,
          which: int = -1) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Before and after the `which`-th event called `name` (that event in the first part)."""
    at = [i for i, e in enumerate(events) if e["Event"] == name][which]
    return events[:at + 1], events[at + 1:]


def answered_call() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Recording 01 cut while the agent and the customer talk."""
    return split(events_of("01-sip-answered-customer-hangup.txt"), "BridgeEnter")


def test_uniqueid_parsing_takes_a_system_name_and_refuses_custom_ids() -> None:
    assert parse_uniqueid("1795460028.12") == (1795460028, 12)
    assert parse_uniqueid("pbx-east-1795460028.3") == (1795460028, 3)
    assert parse_uniqueid("my-originate-id") is None
    assert parse_uniqueid("") is None


def test_instance_watch_tells_a_restart_from_a_reconnect() -> None:
    watch = InstanceWatch()
    assert watch.fully_booted("100", 1000.0, after_reconnect=False) is None
    assert watch.fully_booted("110", 1010.5, after_reconnect=True) is False  # same start
    assert watch.fully_booted("2", 1030.0, after_reconnect=True) is True  # started at 1028
    assert watch.fully_booted("garbage", 1031.0, after_reconnect=True) is None
    assert watch.fully_booted("nan", 1031.0, after_reconnect=True) is None


def test_pbx_restart_seen_by_the_uniqueid_counter_closes_the_cut_call() -> None:
    t = tracker()
    clock = Clock(t)
    before, _ = answered_call()
    assert clock.feed(before) == []
    star55 = new_instance(events_of("05-userevent-sendcard.txt"), 1795461000)  # no FullyBooted
    out = clock.feed(star55, session=2)
    closed, request = out
    assert closed == CallClosed(linkedid="1795460028.0", agent_extension="1001",
                                customer_number=OLD_CUSTOMER, talk_seconds=closed.talk_seconds,
                                reason=RESTART_REASON, trigger="pbx_restart")
    assert closed.talk_seconds is not None and closed.talk_seconds > 0
    assert request == SendRequested("1001", "", "1795461000.0",
                                    reason="no call for this agent since the PBX restarted")
    assert t.active_channels == 0  # the old call is gone, and the *55 channel hung up


def test_pbx_restart_seen_by_fully_booted_closes_the_cut_call() -> None:
    t = tracker()
    clock = Clock(t)
    before, _ = answered_call()
    clock.feed(before)
    clock.now += 60
    # Uptime 2 s, but ids that would not tell (they count on from 19): FullyBooted alone tells
    out = clock.feed([{**e, "Uptime": "2"} if e["Event"] == "FullyBooted" else e
                      for e in events_of("05-userevent-sendcard.txt")], session=2)
    assert [type(o).__name__ for o in out] == ["CallClosed", "SendRequested"]
    assert out[0].trigger == "pbx_restart" and out[0].customer_number == OLD_CUSTOMER
    assert out[1].customer_number == "" and "restarted" in out[1].reason


def test_a_reconnect_to_the_same_asterisk_closes_nothing() -> None:
    t = tracker()
    clock = Clock(t)
    before, after = answered_call()
    clock.feed(before)
    clock.now += 10
    # the same Asterisk greets the new session with an Uptime 10 s longer
    greeting = {"Event": "FullyBooted", "Uptime": str(int(clock.now + 1 - 1000)),
                "LastReload": "1", "Status": "Fully Booted"}
    out = clock.feed([greeting] + after, session=2)
    assert out == [CallEnded(linkedid="1795460028.0", agent_extension="1001",
                             customer_number=OLD_CUSTOMER, talk_seconds=out[0].talk_seconds)]


def test_a_reconnect_without_fully_booted_is_the_same_asterisk_when_old_channels_speak() -> None:
    t = tracker()
    clock = Clock(t)
    before, after = answered_call()
    clock.feed(before)
    clock.now += 3600  # a long outage; then an old channel's event comes first
    out = clock.feed(after, session=2)
    assert [(type(o).__name__, o.customer_number) for o in out] == [("CallEnded", OLD_CUSTOMER)]


def test_star55_after_a_restart_reaches_the_next_real_call_only() -> None:
    t = tracker()
    clock = Clock(t)
    before, _ = answered_call()
    clock.feed(before)
    next_call = new_instance(events_of("01-sip-answered-customer-hangup.txt"), 1795462000,
                             customer=NEW_CUSTOMER)
    talking, rest = split(next_call, "BridgeEnter")
    out = clock.feed(talking, session=2)
    assert [(o.trigger, o.customer_number) for o in out] == [("pbx_restart", OLD_CUSTOMER)]
    star55 = new_instance(events_of("05-userevent-sendcard.txt"), 1795462050)
    star55 = [{**e, "Uniqueid": "1795462050.7", "Linkedid": "1795462050.7"}
              if "Uniqueid" in e else e for e in star55]
    [request] = clock.feed(star55, session=2)
    assert request == SendRequested("1001", NEW_CUSTOMER, "1795462000.0")
    [ended] = clock.feed(rest, session=2)
    assert ended.customer_number == NEW_CUSTOMER and ended.card_already_sent


def test_instance_watch_a_lower_count_no_earlier_than_seen_after_a_reconnect_is_new() -> None:
    watch = InstanceWatch()
    assert watch.new_channel("pbxa-1795460028.0", after_reconnect=False) is False
    assert watch.new_channel("pbxa-1795460028.1", after_reconnect=False) is False
    # a reconnect to the same Asterisk: its new channels count on
    assert watch.new_channel("pbxa-1795460030.2", after_reconnect=True) is False
    # an Asterisk killed and started again within the second counts from 0 again
    assert watch.new_channel("pbxa-1795460030.0", after_reconnect=True) is True
    restarted = InstanceWatch()
    restarted.new_channel("1795460028.1", after_reconnect=False)
    assert restarted.new_channel("1795460029.0", after_reconnect=True) is True  # a second on
    # made before the newest channel seen: no clue (a clock set back, say)
    assert restarted.new_channel("1795460027.0", after_reconnect=True) is None


@pytest.mark.parametrize("later", [0, 1], ids=["same second, same ids", "one second later"])
def test_pbx_restarted_within_seconds_then_star55_in_the_next_call_reaches_its_customer(
        later: int) -> None:
    """As on a real Asterisk killed mid-call and started again at once, with no FullyBooted:
    the next call's ids count from 0 again, in the same second (then they repeat the cut
    call's ids exactly) or the next one. *55 during that call must not reach the cut call."""
    t = tracker()
    clock = Clock(t)
    before, _ = answered_call()
    clock.feed(before)
    epoch = 1795460028 + later
    talking, rest = split(new_instance(events_of("01-sip-answered-customer-hangup.txt"), epoch,
                                       customer=NEW_CUSTOMER), "BridgeEnter")
    out = clock.feed(talking, session=2)
    assert [(o.trigger, o.linkedid, o.customer_number) for o in out] == [
        ("pbx_restart", "1795460028.0", OLD_CUSTOMER)]
    star55 = [{**e, "Uniqueid": f"{epoch}.2", "Linkedid": f"{epoch}.2"} if "Uniqueid" in e else e
              for e in new_instance(events_of("05-userevent-sendcard.txt"), epoch)]
    [request] = clock.feed(star55, session=2)
    assert request == SendRequested("1001", NEW_CUSTOMER, f"{epoch}.0")
    [ended] = clock.feed(rest, session=2)
    assert ended.customer_number == NEW_CUSTOMER and ended.card_already_sent
    # and after that call, *55 names its customer too, never the cut call's
    later_star55 = [{**e, "Uniqueid": f"{epoch}.3", "Linkedid": f"{epoch}.3"}
                    if "Uniqueid" in e else e for e in star55]
    [request] = clock.feed(later_star55, session=2)
    assert request.customer_number == NEW_CUSTOMER and t.active_channels == 0


def test_call_that_began_before_the_daemon_is_decided_from_its_cdr() -> None:
    _, after = answered_call()  # the Cdr comes before the customer's Hangup here
    out = Clock(tracker()).feed(after)
    assert out == [CallEnded(linkedid="1795460028.0", agent_extension="1001",
                             customer_number=OLD_CUSTOMER, talk_seconds=2.0,
                             decided_from="cdr")]


def test_star55_after_a_call_decided_from_its_cdr_reaches_that_calls_customer() -> None:
    """The daemon restarted mid-call and decided it from its Cdr: the agent's *55 after it
    must find that customer, as after any call."""
    _, after = answered_call()
    t = tracker()
    clock = Clock(t)
    [ended] = clock.feed(after)
    assert ended.decided_from == "cdr"
    [request] = clock.feed(events_of("05-userevent-sendcard.txt"))
    assert request == SendRequested("1001", OLD_CUSTOMER, "1795460028.0")


def test_cdr_ahead_of_every_event_of_its_call_is_kept_for_its_hangup() -> None:
    """Under load a live Asterisk sends the Cdr before the HangupRequest: a daemon that came
    back mid-call sees it before any event of those channels, and must still decide the call."""
    _, after = answered_call()
    cdr = next(e for e in after if e["Event"] == "Cdr")
    t = tracker()
    out = Clock(t).feed([cdr] + [e for e in after if e is not cdr])
    assert [(o.agent_extension, o.customer_number, o.talk_seconds, o.decided_from)
            for o in out] == [("1001", OLD_CUSTOMER, 2.0, "cdr")]
    assert t.expire(10_000.0) == []


def test_cdr_between_the_agents_first_events_and_the_customers_is_kept_for_its_hangup() -> None:
    """The agent hung up first: a daemon back mid-call knows the agent's channel from its
    BridgeLeave when the Cdr comes, and nothing yet of the customer's (as a real Asterisk
    sent it in a full test run). The Cdr must still decide the customer's Hangup at once."""
    _, after = answered_call()
    agent = [e for e in after if e.get("Channel", "").startswith("SIP/1001")]
    cdr = next(e for e in after if e["Event"] == "Cdr")
    customer = [e for e in after if e not in agent and e is not cdr]
    t = tracker()
    out = Clock(t).feed([agent[0], cdr, *agent[1:], *customer])
    assert [(o.agent_extension, o.customer_number, o.talk_seconds, o.decided_from)
            for o in out] == [("1001", OLD_CUSTOMER, 2.0, "cdr")]
    assert t.expire(10_000.0) == []


def test_an_early_cdr_names_the_agent_of_a_local_member_already_known() -> None:
    """As above with the agent behind a Local channel (a FreePBX queue member): its events
    name no agent, its name does, and the Cdr kept for the customer carries that agent."""
    _, after = answered_call()
    local = "Local/1001@from-queue-00000001;1"
    after = [{k: v.replace("SIP/1001-00000001", local) for k, v in e.items()} for e in after]
    agent = [e for e in after if e.get("Channel") == local]
    cdr = next(e for e in after if e["Event"] == "Cdr")
    customer = [e for e in after if e not in agent and e is not cdr]
    out = Clock(tracker()).feed([agent[0], cdr, *agent[1:], *customer])
    assert [(o.agent_extension, o.customer_number, o.decided_from) for o in out] == [
        ("1001", OLD_CUSTOMER, "cdr")]


def test_cdr_after_the_hangup_decides_once_and_a_second_cdr_changes_nothing() -> None:
    _, after = answered_call()
    cdr = next(e for e in after if e["Event"] == "Cdr")
    reordered = [e for e in after if e is not cdr] + [cdr, cdr]
    t = tracker()
    out = Clock(t).feed(reordered)
    assert [(o.agent_extension, o.customer_number, o.talk_seconds, o.decided_from)
            for o in out] == [("1001", OLD_CUSTOMER, 2.0, "cdr")]
    assert t.expire(10_000.0) == []


def test_a_call_seen_whole_is_not_decided_again_by_a_late_cdr() -> None:
    events = events_of("01-sip-answered-customer-hangup.txt")
    cdr = next(e for e in events if e["Event"] == "Cdr")
    t = tracker()
    out = Clock(t).feed([e for e in events if e is not cdr] + [cdr])
    assert len(out) == 1 and isinstance(out[0], CallEnded) and out[0].decided_from == "events"
    assert t.expire(10_000.0) == []


def test_queue_call_begun_before_the_daemon_goes_to_the_member_who_answered() -> None:
    _, after = split(events_of("04-queue-sip-members-answered.txt"), "BridgeEnter")
    out = Clock(tracker()).feed(after)
    assert [(o.agent_extension, o.customer_number, o.talk_seconds) for o in out] == [
        ("1001", OLD_CUSTOMER, 4.0)]


def test_no_cdr_within_the_wait_is_recorded_as_closed_with_the_reason() -> None:
    _, after = answered_call()
    t = tracker(cdr_wait=30.0)
    clock = Clock(t)
    assert clock.feed([e for e in after if e["Event"] != "Cdr"]) == []
    assert t.expire(clock.now + 5) == []
    [closed] = t.expire(clock.now + 31)
    assert isinstance(closed, CallClosed) and closed.trigger == "no_cdr"
    assert closed.customer_number == OLD_CUSTOMER and "no Cdr came within 30 s" in closed.reason


def test_unanswered_call_begun_before_the_daemon_is_closed_as_not_answered() -> None:
    events = events_of("03-sip-ring-no-answer-abandon.txt")
    _, after = split(events, "DialBegin", 0)
    t = tracker(cdr_wait=30.0)
    clock = Clock(t)
    assert clock.feed(after) == []  # one NO ANSWER Cdr: a queue could still send an answered one
    [closed] = t.expire(clock.now + 31)
    assert closed.trigger == "not_answered" and closed.agent_extension == ""


def test_live_channels_are_bounded_and_the_oldest_is_let_go() -> None:
    t = tracker(max_channels=10)
    out = []
    for n in range(12):
        out += t.handle({"Event": "Newchannel", "Channel": f"SIP/trunk-{n:08x}",
                         "Uniqueid": f"1795460000.{n}", "Linkedid": f"1795460000.{n}",
                         "CallerIDNum": f"+86138000000{n:02d}"}, 1000.0 + n)
    assert t.active_channels == 10
    assert [(o.linkedid, o.trigger) for o in out] == [("1795460000.0", "evicted"),
                                                      ("1795460000.1", "evicted")]
    assert isinstance(out[0], CallClosed) and "max_live_channels (10)" in out[0].reason


def test_calls_whose_hangup_never_comes_are_closed_once_per_call() -> None:
    before, _ = answered_call()
    t = tracker(call_timeout=3600.0)
    clock = Clock(t)
    clock.feed(before)
    [closed] = t.expire(clock.now + 4000)
    assert closed.trigger == "call_timeout" and closed.customer_number == OLD_CUSTOMER
    assert closed.agent_extension == "1001" and t.active_channels == 0


def test_a_restart_also_closes_calls_still_waiting_for_their_cdr() -> None:
    _, after = answered_call()
    t = tracker()
    clock = Clock(t)
    assert clock.feed([e for e in after if e["Event"] != "Cdr"]) == []  # waits for its Cdr
    # a system name prefixes the ids (`systemname` in asterisk.conf), as a real PBX may
    old = {"Event": "Newchannel", "Channel": "SIP/1002-00000009", "CallerIDNum": "1002",
           "Uniqueid": "pbx-1795460030.7", "Linkedid": "pbx-1795460030.7"}
    new = {**old, "Uniqueid": "pbx-1795460090.0", "Linkedid": "pbx-1795460090.0"}
    assert clock.feed([old]) == []
    [closed] = clock.feed([new], session=2)
    assert closed.trigger == "pbx_restart" and closed.customer_number == OLD_CUSTOMER
    assert t.expire(clock.now + 3600) == []  # closed once, not again when the wait ends


def test_calls_in_progress_names_live_and_waiting_calls() -> None:
    before, after = answered_call()
    t = tracker()
    clock = Clock(t)
    clock.feed(before)
    assert t.calls_in_progress() == ["1795460028.0"]
    waiting = tracker()
    Clock(waiting).feed([e for e in after if e["Event"] != "Cdr"])
    assert waiting.calls_in_progress() == ["1795460028.0"]
    assert tracker().calls_in_progress() == []
