"""Call-backs and presence from the real Asterisk's recordings (tests/fixtures/10-*.txt)."""

from __future__ import annotations

import asyncio

import pytest

from ccshortlink.app.callbackdispatch import CallbackDispatcher
from ccshortlink.app.callbacks import CallbackDeps
from ccshortlink.app.pbxflows import PbxFlows
from ccshortlink.config.agents import load_agents
from ccshortlink.config.callback import CallbackConfig
from ccshortlink.core.callbacks import CallbackCalls
from ccshortlink.core.calls import CallEnded, Outcome
from ccshortlink.core.policy import PolicyConfig
from ccshortlink.core.presence import PresenceBook
from ccshortlink.core.vocab import CallbackState, Presence
from tests.support.configfile import ROOT
from tests.support.quiet import Counts, Quiet
from tests.support.transcripts import events_of


def steps_of(name: str) -> list[tuple[CallbackState, str, str]]:
    calls = CallbackCalls()
    calls.placed(1)  # the recordings' Originate was ActionID ccs-cb-1
    found = []
    for at, event in enumerate(events_of(name)):
        step = calls.on_event(event, float(at))
        if step is not None:
            found.append((step.state, step.reason, step.linkedid))
    assert calls.in_flight() == []
    return found


def test_an_answered_call_back_goes_through_every_step() -> None:
    assert steps_of("10-originate-callback-answered.txt") == [
        (CallbackState.CALLING_CUSTOMER, "", "1796610191.0"),
        (CallbackState.CONNECTED, "", ""), (CallbackState.DONE, "", "")]


def test_the_agent_or_the_customer_not_answering() -> None:
    assert steps_of("10-originate-agent-noanswer.txt") == [
        (CallbackState.AGENT_MISSED, "no_answer", "")]
    assert steps_of("10-originate-customer-noanswer.txt") == [
        (CallbackState.CALLING_CUSTOMER, "", "1796610200.0"),
        (CallbackState.CUSTOMER_MISSED, "noanswer", "")]


def test_presence_follows_the_agents_calls_and_phone() -> None:
    book = PresenceBook()
    seen: list[Presence] = []
    for event in events_of("10-presence.txt"):
        book.on_event("default", event)
        now = book.of("default", ["1001"])
        if not seen or seen[-1] != now:
            seen.append(now)
    # a direct call, a queue call, the phone unreachable, back
    assert seen == [Presence.UNKNOWN, Presence.BUSY, Presence.FREE, Presence.BUSY,
                    Presence.FREE, Presence.AWAY, Presence.FREE]


def dispatcher(flows: PbxFlows) -> CallbackDispatcher:
    """One that placed nothing itself: another daemon on the same database placed it."""
    deps = CallbackDeps(store=None, config=CallbackConfig(enabled=True),  # type: ignore[arg-type]
                        agents=lambda: load_agents(ROOT / "etc" / "agents.yaml"),
                        pbxs=["default"], policy=PolicyConfig(), presence=PresenceBook(),
                        clock=lambda: 0.0, log=Quiet(), outcomes=lambda outcome: Counts())
    return CallbackDispatcher(deps, pbx=None, waiting=Counts(),  # type: ignore[arg-type]
                              mark_callback=flows.mark_callback, owner="test")


@pytest.mark.parametrize("with_callbacks", [False, True])
def test_a_call_back_s_own_call_gets_no_card(with_callbacks: bool) -> None:
    agents = load_agents(ROOT / "etc" / "agents.yaml")
    flows = PbxFlows.build(["default"], PolicyConfig(min_talk_seconds=1), agents, Quiet(),
                           calls_seen=Counts(), calls_ended=Counts())
    callbacks = dispatcher(flows)
    for event in events_of("10-originate-callback-answered.txt"):
        if with_callbacks:  # first, as the daemon hands them each event
            callbacks.on_event("default", event)
        flows.on_event("default", event, 1)
    queue: asyncio.Queue[Outcome] = flows.outcomes
    outcomes = [queue.get_nowait() for _ in range(queue.qsize())]
    if with_callbacks:
        assert outcomes == []
    else:  # what the tracker makes of it unmarked: the agent talked to the customer
        assert [type(o) for o in outcomes] == [CallEnded]
