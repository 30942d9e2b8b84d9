"""[callback] and the agents' `hours`: every problem at once, and check-config says what is on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccshortlink.config.agents import AgentsError, parse_agents
from ccshortlink.config.settings import ConfigError, load_config
from tests.support.configfile import write_config


def test_off_by_default_and_defaults_when_on(tmp_path: Path) -> None:
    assert not load_config(write_config(tmp_path)).callback.enabled
    on = load_config(write_config(tmp_path, callback={"enabled": True,
                                                      "hours": "Mon-Fri 09:00-18:00"}))
    assert on.callback.enabled and on.callback.agent_channel == "PJSIP/{extension}"
    assert on.callback.lookup_without_token
    strict = load_config(write_config(tmp_path, callback={"enabled": True,
                                                          "lookup_without_token": False}))
    assert not strict.callback.lookup_without_token


def test_every_callback_problem_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, callback={
            "enabled": True, "hours": "Mon-Fry 09:00-18:00", "agent_channel": "PJSIP/{agent}",
            "customer_exten": "{nationl}", "pbx": "site-z", "lookup_without_token": "no"}))
    problems = "\n".join(info.value.problems)
    assert "[callback] hours: 'Mon-Fry 09:00-18:00': 'Fry' is not a day" in problems
    assert "[callback] agent_channel must contain {extension}" in problems
    assert "[callback] customer_exten may name only {national}" in problems
    assert "[callback] pbx names no [[ami]] PBX: 'site-z'" in problems
    assert "[callback] lookup_without_token must be bool, got 'no'" in problems


def test_the_national_dialling_form_is_accepted(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, callback={"enabled": True,
                                                          "customer_exten": "9{dial}"}))
    assert config.callback.customer_exten == "9{dial}"


def test_an_agents_own_hours(tmp_path: Path) -> None:
    agents = parse_agents('agents:\n  - id: CS1\n    extensions: ["1001"]\n    name: A\n'
                          '    phone: "1"\n    hours: "Sat-Sun 10:00-16:00"\n',
                          tmp_path / "agents.yaml")
    agent = agents.by_id("CS1")
    assert agent is not None and agent.hours == "Sat-Sun 10:00-16:00"
    with pytest.raises(AgentsError) as info:
        parse_agents('agents:\n  - id: CS1\n    extensions: ["1001"]\n    name: A\n'
                     '    phone: "1"\n    hours: "weekdays"\n', tmp_path / "agents.yaml")
    assert "'hours': 'weekdays' is not like 'Mon-Fri 09:00-18:00'" in info.value.problems[0]


def test_check_config_says_call_backs_are_on(tmp_path: Path) -> None:
    config = write_config(tmp_path, callback={"enabled": True, "customer_exten": "0{national}"})
    result = subprocess.run([sys.executable, "-m", "ccshortlink", "check-config", "-c",
                             str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "[callback] caller_id and [web] hotline are both empty" in result.stderr
    assert ("call-backs: on; ring PJSIP/{extension}, then 0{national} in from-internal;"
            " hours always; the AMI user needs write = originate") in result.stdout


def test_no_warning_once_the_customer_sees_the_hotline(tmp_path: Path) -> None:
    config = write_config(tmp_path, callback={"enabled": True}, web={"hotline": "4008001234"})
    result = subprocess.run([sys.executable, "-m", "ccshortlink", "check-config", "-c",
                             str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "caller_id" not in result.stderr, result.stderr


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccshortlink", "check-config", "-c",
                           str(config)], capture_output=True, text=True, timeout=60)


def test_check_config_warns_that_the_lookup_is_open_to_this_box_behind_https(
        tmp_path: Path) -> None:
    advice = ("[callback] lookup_without_token = true answers the preferred-agent lookup "
              "without a token from this box, and [web] public_url is https (a proxy in front "
              "is likely): keep /api/ off the public proxy or set lookup_without_token = false")
    behind_tls = check_config(write_config(tmp_path, callback={"enabled": True}))
    assert behind_tls.returncode == 0 and advice in behind_tls.stderr, behind_tls.stderr
    plain = check_config(write_config(tmp_path, callback={"enabled": True},
                                      web={"public_url": "http://10.0.0.5:8080"}))
    assert plain.returncode == 0 and "lookup_without_token" not in plain.stderr
    strict = check_config(write_config(tmp_path, callback={
        "enabled": True, "lookup_without_token": False}, web={"api_token": "a" * 32}))
    assert strict.returncode == 0 and "lookup_without_token" not in strict.stderr
    tokenless = check_config(write_config(tmp_path, callback={
        "enabled": True, "lookup_without_token": False}))
    assert tokenless.returncode == 0
    assert ("[callback] lookup_without_token = false and no [web] api_token: the "
            "preferred-agent lookup answers no one") in tokenless.stderr
