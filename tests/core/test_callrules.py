"""Who gets a card at hangup, from the real recordings: direction, queue, auto_send, missed call."""

from __future__ import annotations

from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest

from ccshortlink.config.agents import AgentsError, load_agents
from ccshortlink.config.settings import ConfigError, load_config
from ccshortlink.core.agents import Agent
from ccshortlink.core.callroute import CallRoute, Direction
from ccshortlink.core.callrules import direction_of, hangup_rule_skip
from ccshortlink.core.calls import CallClosed, CallEnded, CallTracker, Outcome, default_agent_lookup
from ccshortlink.core.missedcall import MissedCallTexts, decide_missed_call
from ccshortlink.core.policy import CustomerNumber, PolicyConfig, SendFacts
from ccshortlink.core.routebook import RouteBook
from ccshortlink.core.vocab import Trigger, Verdict
from tests.support.configfile import write_config
from tests.support.transcripts import events_of

AGENTS = {"1001", "1002"}
ANN = Agent(id="CS1001", extensions=("1001",), name="Ann", phone="+862088880000")


def replay(name: str, agents: set[str] = AGENTS) -> tuple[list[Outcome], RouteBook]:
    """As the daemon's CallFlow: the tracker concludes, the route book annotates, then learns."""
    lookup = default_agent_lookup(agents.__contains__)
    tracker, routes = CallTracker(lookup), RouteBook()
    out: list[Outcome] = []
    for i, event in enumerate(events_of(name)):
        now = 1000.0 + i * 0.5
        out.extend(routes.annotate(o) for o in tracker.handle(event, now))
        routes.handle(event, now, lookup)
    return out, routes


def skip_for(outcome: Outcome, agent: Agent = ANN, **policy: object) -> str | None:
    assert isinstance(outcome, CallEnded)
    return hangup_rule_skip(agent=agent, route=outcome.route,
                            other_party=outcome.customer_number,
                            policy=PolicyConfig(**policy),  # type: ignore[arg-type]
                            is_agent_extension=AGENTS.__contains__)


def test_a_customer_calling_in_is_inbound_and_through_no_queue() -> None:
    [ended], routes = replay("01-sip-answered-customer-hangup.txt")
    assert isinstance(ended, CallEnded) and ended.route == CallRoute(started_by_agent=False)
    assert direction_of(ended.route, ended.customer_number, AGENTS.__contains__) == "inbound"
    assert len(routes) == 0  # forgotten with the call's last Hangup
    assert skip_for(ended) is None
    assert skip_for(ended, directions=("outbound",)) == \
        "direction inbound not in [policy] directions"
    assert skip_for(ended, queues_include=("support",)) == \
        "inbound call through no queue, and [policy] queues_include is set"
    assert skip_for(ended, queues_exclude=("support",)) is None


def test_a_queue_call_is_judged_by_its_queue() -> None:
    [ended], _ = replay("04-queue-sip-members-answered.txt")
    assert isinstance(ended, CallEnded) and ended.route is not None
    assert ended.route.queues == ("support",) and not ended.route.abandoned
    assert skip_for(ended) is None
    assert skip_for(ended, queues_include=("support", "sales")) is None
    assert skip_for(ended, queues_include=("sales",)) == \
        "queue support not in [policy] queues_include"
    assert skip_for(ended, queues_exclude=("support",)) == \
        "queue support in [policy] queues_exclude"


def test_an_agent_calling_a_customer_is_outbound_and_no_queue_rule_holds_it() -> None:
    [ended], routes = replay("09-sip-agent-calls-customer.txt")
    assert isinstance(ended, CallEnded)
    assert (ended.agent_extension, ended.customer_number) == ("1001", "+8613800138000")
    assert ended.route == CallRoute(started_by_agent=True)
    assert len(routes) == 0
    assert skip_for(ended) is None
    assert skip_for(ended, queues_include=("support",)) is None
    assert skip_for(ended, directions=("inbound",)) == \
        "direction outbound not in [policy] directions"


def test_an_agent_calling_an_extension_is_internal() -> None:
    # Between two agents nothing is concluded at all: neither end is a customer.
    assert replay("08-sip-agent-calls-agent.txt")[0] == []
    # With 1002 not an agent (a back-office desk), the tracker sees "1002" as the other party
    [ended], _ = replay("08-sip-agent-calls-agent.txt", agents={"1001"})
    assert isinstance(ended, CallEnded) and ended.customer_number == "1002"
    assert skip_for(ended) == "direction internal not in [policy] directions"
    assert skip_for(ended, directions=("inbound", "outbound", "internal")) is None


def test_a_caller_who_gives_up_in_the_queue_is_an_abandoned_queue_call() -> None:
    [closed], routes = replay("07-queue-sip-caller-abandons.txt")
    assert isinstance(closed, CallClosed) and closed.trigger == Trigger.NOT_ANSWERED
    assert closed.customer_number == "+8613800138000"
    assert closed.route == CallRoute(False, ("support",), abandoned=True)
    assert len(routes) == 0
    # ringing an agent directly and giving up is not a queue call
    [direct], _ = replay("03-sip-ring-no-answer-abandon.txt")
    assert isinstance(direct, CallClosed) and direct.route == CallRoute(False)


def test_auto_send_false_holds_the_card_at_hangup_first() -> None:
    [ended], _ = replay("01-sip-answered-customer-hangup.txt")
    quiet = replace(ANN, auto_send=False)
    assert skip_for(ended, quiet) == "agent CS1001 has auto_send: false (the agent sends with *55)"


def test_a_call_whose_start_was_not_seen_passes_the_direction_and_queue_rules() -> None:
    assert direction_of(None, "+8613800138000", AGENTS.__contains__) is None
    assert direction_of(None, "1002", AGENTS.__contains__) == Direction.INTERNAL
    ended = CallEnded("x", "1001", "+8613800138000", 30.0, decided_from="cdr")
    assert skip_for(ended, directions=("outbound",), queues_include=("sales",)) is None


def test_the_route_book_forgets_lost_calls() -> None:
    lookup = default_agent_lookup(AGENTS.__contains__)
    routes = RouteBook(max_calls=2, timeout=60)
    for i in range(3):
        routes.handle({"Event": "Newchannel", "Channel": f"SIP/trunk-0{i}", "Uniqueid": f"{i}.0",
                       "Linkedid": f"{i}.0", "CallerIDNum": "+8613800138000"}, 100.0 + i, lookup)
    assert routes.route("0.0") is None and routes.route("2.0") is not None
    routes.expire(161.5)
    assert routes.route("1.0") is None and routes.route("2.0") is not None


CUSTOMER = CustomerNumber("+8613800138000", "CN", "Asia/Shanghai")
NOON = 1_767_240_000.0  # 2026-01-01 12:00 in Shanghai
FRESH = SendFacts(opted_out=False, last_pair_sms_at=None, sms_since_day_start=0)


@pytest.mark.parametrize(("facts", "policy", "verdict", "reason"), [
    (FRESH, PolicyConfig(), Verdict.SEND, ""),
    (replace(FRESH, opted_out=True), PolicyConfig(), Verdict.SKIP,
     "number opted out (on the do-not-send list)"),
    (replace(FRESH, sms_since_day_start=3), PolicyConfig(), Verdict.SKIP,
     "daily cap of 3 SMS reached"),
    (replace(FRESH, last_pair_sms_at=NOON - 3600), PolicyConfig(), Verdict.SKIP,
     "a missed-call SMS went to this number within 24h"),
    (replace(FRESH, last_pair_sms_at=NOON - 3600), PolicyConfig(resend_window_hours=0.5),
     Verdict.SEND, ""),
    (FRESH, PolicyConfig(quiet_start=time(11), quiet_end=time(13)), Verdict.DEFER,
     "quiet hours in Asia/Shanghai, deferred to 13:00"),
], ids=["send", "opted out", "daily cap", "one per window", "window passed", "quiet hours"])
def test_the_missed_call_sms_keeps_the_cards_caps(facts: SendFacts, policy: PolicyConfig,
                                                   verdict: Verdict, reason: str) -> None:
    decision = decide_missed_call(facts=facts, customer=CUSTOMER, policy=policy, now=NOON)
    assert (decision.outcome, decision.reason) == (verdict, reason)


def test_the_missed_call_text_follows_the_callers_country() -> None:
    texts = MissedCallTexts({"zh-CN": "抱歉 {{ hotline }}", "en": "Sorry {{ hotline }}"}, "zh-CN")
    assert texts.render("CN", hotline="4008", company="") == "抱歉 4008"
    assert texts.render("GB", hotline="4008", company="") == "Sorry 4008"
    assert texts.render("FR", hotline="4008", company="") == "抱歉 4008"


def problems(tmp_path: Path, extra: str = "", **sections: dict[str, object]) -> list[str]:
    path = write_config(tmp_path, **sections)
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, render_templates=True)
    return info.value.problems


def test_rule_keys_are_read_and_checked(tmp_path: Path) -> None:
    path = write_config(tmp_path, policy={"directions": ["inbound"],
                                          "queues_exclude": ["support"]})
    policy = load_config(path).policy
    assert policy.directions == ("inbound",) and policy.queues_exclude == ("support",)
    assert not policy.missed_call_sms
    assert load_config(write_config(tmp_path)).policy.directions == ("inbound", "outbound")
    assert problems(tmp_path, policy={"directions": ["inbound", "sideways"],
                                      "queues_include": ["a", "b"], "queues_exclude": ["b"],
                                      "missed_call_sms": True}) == [
        "[policy] directions: 'sideways' is not a direction (any of inbound, outbound, "
        "internal)",
        "[policy] queue b is in both queues_include and queues_exclude",
        "[policy] missed_call_sms needs [web] hotline: the SMS gives the caller the number "
        "to call back"]


def test_a_missed_call_text_must_give_the_hotline(tmp_path: Path) -> None:
    extra = '\n[sms.missed_call_templates]\nen = "Sorry we missed you"\n'
    assert problems(tmp_path, extra, policy={"missed_call_sms": True},
                    web={"hotline": "400-820-8820"}) == [
        "[sms] missed_call_templates text for 'en' renders without the hotline "
        "({{ hotline }}): 'Sorry we missed you'"]
    # off by default: the same text is no problem then
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    assert load_config(path, render_templates=True).sms.missed_call_templates["en"] == \
        "Sorry we missed you"


def test_auto_send_is_read_from_the_agents_file(tmp_path: Path) -> None:
    write_config(tmp_path)
    agents = tmp_path / "agents.yaml"
    text = agents.read_text(encoding="utf-8")
    agents.write_text(text.replace('    extensions: ["1002"]\n',
                                   '    extensions: ["1002"]\n    auto_send: false\n'),
                      encoding="utf-8")
    directory = load_agents(agents)
    assert [a.auto_send for a in directory.agents] == [True, False]
    agents.write_text(text.replace('    extensions: ["1002"]\n',
                                   '    extensions: ["1002"]\n    auto_send: maybe\n'),
                      encoding="utf-8")
    with pytest.raises(AgentsError) as info:
        load_agents(agents)
    line = text.splitlines().index("  - id: CS1002") + 1  # problems name the agent's line
    assert info.value.problems == [
        f"{agents}:{line}: 'auto_send' must be true or false, got 'maybe'"]


def test_the_queue_lists_hold_back_the_missed_call_sms_too(tmp_path: Path) -> None:
    from ccshortlink.app.missedcalls import wants_missed_call_sms

    [closed], _ = replay("07-queue-sip-caller-abandons.txt")  # gave up in queue "support"
    web = {"hotline": "4008123123"}

    def wanted(**policy: object) -> bool:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        config = load_config(write_config(folder, web=web,
                                          policy={"missed_call_sms": True, **policy}))
        return wants_missed_call_sms(closed, config)

    assert wanted()
    assert not wanted(queues_exclude=["support"])
    assert not wanted(queues_include=["sales"])
    assert wanted(queues_include=["support"])
