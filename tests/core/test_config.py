"""Configuration and agents files: every problem reported at once, exit code 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccshortlink.config.agents import AgentsError, load_agents, parse_agents
from ccshortlink.config.settings import ConfigError, load_config
from tests.support.configfile import ROOT, write_config


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccshortlink", *args], capture_output=True,
                          text=True, timeout=60)


def test_example_config_is_valid_and_minimal_keys_suffice(tmp_path: Path) -> None:
    config = load_config(ROOT / "etc" / "ccshortlink.toml")
    assert config.web.public_url == "https://cs.example.com"
    assert config.agents_file == (ROOT / "etc" / "agents.yaml").resolve()
    # only the documented keys: everything else has a default
    minimal = load_config(write_config(tmp_path))
    assert minimal.smpp.window == 10
    assert minimal.policy.default_region == "CN"
    assert minimal.database_path == tmp_path.resolve() / "state" / "ccshortlink.db"


def test_example_agents_load() -> None:
    agents = load_agents(ROOT / "etc" / "agents.yaml")
    agent = agents.by_extension("1001")
    assert agent is not None and agent.id == "CS1001"
    assert agent.avatar is not None and agent.avatar.is_file()
    assert agents.by_id("CS1002") is not None


def test_every_config_problem_is_listed(tmp_path: Path) -> None:
    path = write_config(tmp_path, ami={"port": "x"}, web={"listen": "nowhere",
                                                          "public_url": "ftp:/x"},
                        policy={"default_region": "ZZ", "min_talk_seconds": -1})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    for fragment in ("[ami] port", "[web] listen", "[web] public_url", "default_region",
                     "min_talk_seconds"):
        assert fragment in text
    assert len(info.value.problems) == 5


def test_missing_sections_are_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[ami]\nhost = '127.0.0.1'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "[smpp] section is missing" in info.value.problems
    assert "[ami] secret is required" in info.value.problems


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = write_config(tmp_path)
    result = run_cli("check-config", "-c", str(good))
    assert result.returncode == 0, result.stderr
    assert "OK (2 agents" in result.stdout
    bad = write_config(tmp_path, smpp={"window": 0}, web={"public_url": ""})
    result = run_cli("check-config", "-c", str(bad))
    assert result.returncode == 78
    assert "2 problem(s)" in result.stderr and "window" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_agents_file_exits_78_with_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    (tmp_path / "agents.yaml").write_text(
        "agents:\n  - id: CS1\n    extensions: ['1001']\n    name: A\n    phone: '1'\n"
        "  - id: CS1\n    extensions: ['1002']\n    phone: '2'\n    colour: red\n"
        "  - id: CS3\n    extensions: ['1001']\n    name: C\n    phone: '3'\n")
    for command in ("check-config", "run"):
        result = run_cli(command, "-c", str(path))
        assert result.returncode == 78, result.stderr
        assert "agents.yaml:6: duplicate id 'CS1'" in result.stderr
        assert "agents.yaml:6: agent is missing 'name'" in result.stderr
        assert "agents.yaml:6: unknown field 'colour'" in result.stderr
        assert "extension '1001' already belongs to 'CS1'" in result.stderr


def test_broken_yaml_reports_the_line(tmp_path: Path) -> None:
    with pytest.raises(AgentsError) as info:
        parse_agents("agents:\n  - id: [unclosed\n", tmp_path / "agents.yaml")
    assert info.value.problems[0].startswith(f"{tmp_path / 'agents.yaml'}:")
    assert "not valid YAML" in info.value.problems[0]


def test_secrets_never_in_reprs(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert "s3cret" not in repr(config)
    assert "pw" not in repr(config.smpp).replace("port", "")


# --- strictness: every key known, every number finite and bounded ------------------------

EVERY_KEY: dict[str, dict[str, object]] = {
    "ami": {"ping_interval": 10, "ping_timeout": 5, "reconnect_max": 30,
            "events": "call,agent,user,cdr"},
    "smpp": {"source_addr_ton": 5, "source_addr_npi": 0, "system_type": "", "window": 10,
             "max_per_second": 100, "enquire_link_interval": 30, "response_timeout": 10,
             "reconnect_max": 60, "registered_delivery": True},
    "web": {"hotline": "+86 400 800 8888", "api_token": "t0k3n-long-and-random",
            "company": "Example Co.", "trusted_proxies": ["127.0.0.1", "10.0.0.1/8", "::1"]},
    "policy": {"mobile_only": True, "link_ttl_days": 30, "resend_window_hours": 24,
               "daily_cap_per_number": 3, "quiet_start": "21:00", "quiet_end": "08:00",
               "timezone": "Asia/Shanghai", "card_on_transfer": "last",
               "call_timeout_hours": 12, "feature_code_window_minutes": 30,
               "max_live_channels": 20000},
    "sms": {"default_language": "zh-CN", "template": "{{ agent.name }} {{ url }}",
            "max_attempts": 10, "expire_hours": 24, "opt_out_words": ["TD"],
            "opt_in_words": ["START"]},
    "log": {"level": "info"},
    "retention": {"days": 365},
}


def test_every_key_accepted_before_is_still_accepted(tmp_path: Path) -> None:
    path = write_config(tmp_path, **EVERY_KEY)
    path.write_text(path.read_text() + '\n[sms.templates]\nen = "Hi {{ url }}"\n')
    config = load_config(path)
    assert config.web.trusted_proxies == ("127.0.0.1", "10.0.0.1/8", "::1")
    assert config.policy.max_live_channels == 20000 and config.ami.events == "call,agent,user,cdr"
    assert config.sms.templates["en"] == "Hi {{ url }}"


def problems_of(tmp_path: Path, extra: str = "", **sections: dict[str, object]) -> list[str]:
    path = write_config(tmp_path, **sections)
    path.write_text(path.read_text() + extra)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_unknown_keys_and_sections_are_named_with_a_suggestion(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "\n[smsc]\nhost = 'x'\n[zzz]\n", web={"api_tokn": "x"},
                           policy={"min_talk_second": 3, "colour": "red"})
    assert "unknown key [web] api_tokn (did you mean api_token?)" in problems
    assert "unknown key [policy] min_talk_second (did you mean min_talk_seconds?)" in problems
    assert "unknown key [policy] colour" in problems  # nothing close: no guess
    assert "unknown section [smsc] (did you mean sms?)" in problems
    assert "unknown section [zzz]" in problems
    assert len(problems) == 5


def test_numbers_are_finite_and_in_range(tmp_path: Path) -> None:
    path = write_config(tmp_path, ami={"ping_timeout": 1e9}, policy={"link_ttl_days": 99999},
                        retention={"days": 0})
    text = path.read_text().replace("min_talk_seconds = 1", "min_talk_seconds = inf")
    path.write_text(text + "\n[sms]\nexpire_hours = nan\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        "[ami] ping_timeout must be in 0.05..600, got 1e+09",
        "[policy] min_talk_seconds must be a finite number, got inf",
        "[policy] link_ttl_days must be in 0.001..3650, got 99999",
        "[sms] expire_hours must be a finite number, got nan",
        "[retention] days must be in 1..36500, got 0",
    ]


def test_smpp_fields_fit_smpp_3_4(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, smpp={"system_id": "s" * 16, "password": "123456789",
                                           "system_type": "t" * 13, "source_addr": "ExampleBank1",
                                           "host": ""})
    assert problems == [
        "[smpp] host must not be empty",
        ("[smpp] system_id is 16 bytes, SMPP 3.4 allows at most 15 (the SMSC would see it "
         "cut short)"),
        "[smpp] password is 9 bytes, SMPP 3.4 allows at most 8 (the SMSC would see it cut short)",
        ("[smpp] system_type is 13 bytes, SMPP 3.4 allows at most 12 (the SMSC would see it "
         "cut short)"),
        ("[smpp] source_addr is 12 characters: an alphanumeric sender (source_addr_ton = 5) "
         "shows at most 11 on a phone")]
    # a number sender may be 20 digits; the 11-character rule is for alphanumeric senders
    config = load_config(write_config(tmp_path, smpp={"source_addr": "8" * 20,
                                                      "source_addr_ton": 1, "password": "8" * 8}))
    assert config.smpp.source_addr == "8" * 20


def test_trusted_proxies_are_addresses_or_networks(tmp_path: Path) -> None:
    problems = problems_of(tmp_path,
                           web={"trusted_proxies": ["10.0.0.0/8", "nginx", "1.2.3.4/99"]})
    assert problems == [
        ("[web] trusted_proxies: 'nginx' is not an IP address or CIDR network (e.g. 127.0.0.1 "
         "or 10.0.0.0/8)"),
        ("[web] trusted_proxies: '1.2.3.4/99' is not an IP address or CIDR network (e.g. "
         "127.0.0.1 or 10.0.0.0/8)")]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_config(path).smpp.window == 10


def test_database_folder_problems_are_found_without_creating_anything(tmp_path: Path) -> None:
    from ccshortlink.config.advice import database_folder_problem

    assert database_folder_problem(tmp_path / "new" / "deeper" / "x.db") is None
    assert not (tmp_path / "new").exists()
    assert database_folder_problem(tmp_path) == "is a directory, not a database file"
    (tmp_path / "file").write_text("")
    blocked = database_folder_problem(tmp_path / "file" / "x.db")
    assert blocked == f"{tmp_path / 'file'} is not a folder"


def test_numbers_no_parser_can_hold_are_problems_not_crashes(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    text = path.read_text()
    for value, reason in (("1" + "0" * 400, "must be a finite number, got a number too large"),
                          ("1e400", "must be a finite number, got inf"),
                          ("1" + "0" * 5000, "not valid TOML: Exceeds the limit"),
                          ("[" * 5000 + "]" * 5000, "not valid TOML: nested too deeply")):
        path.write_text(text.replace("min_talk_seconds = 1", f"min_talk_seconds = {value}"))
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert reason in info.value.problems[0], value[:10]


def test_warnings_name_the_setting_never_the_secret(tmp_path: Path) -> None:
    from ccshortlink.config.advice import config_warnings

    config = load_config(write_config(tmp_path, ami={"secret": "Change-Me"},
                                      web={"api_token": "short-tok3n"}))
    assert config_warnings(config) == [
        "[ami] secret is still an example value: set a real one",
        ("[web] api_token is 11 characters: use 16 or more random ones (e.g. `openssl rand "
         "-hex 16`)")]
    problems = problems_of(tmp_path, smpp={"source_addr": "106900000000"})
    assert problems[0].endswith("(a number: set source_addr_ton = 1 or 3)")


def test_template_problems_come_with_the_others_and_never_stop_trace(tmp_path: Path) -> None:
    bad_template = {"template": "{% for i in range(99999) %}{% endfor %}{{ url }}"}
    problems = problems_of(tmp_path, web={"api_tokn": "x"}, sms=bad_template)
    assert problems == ["unknown key [web] api_tokn (did you mean api_token?)"]
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, web={"api_tokn": "x"}, sms=bad_template),
                    render_templates=True)
    assert len(info.value.problems) == 2
    assert "range of 99999 numbers" in info.value.problems[1]
    # trace and stats read the config without rendering: a broken template stops no inquiry
    assert load_config(write_config(tmp_path, sms=bad_template)).sms.templates["zh-CN"]


def test_a_database_url_is_shown_with_its_password_masked() -> None:
    from ccshortlink.config.database import mask_url

    url = "postgresql://app:p%40ss@db1:5432,db2:5432/cc?target_session_attrs=read-write"
    assert mask_url(url) == ("postgresql://app:***@db1:5432,db2:5432/cc"
                             "?target_session_attrs=read-write")
    assert mask_url("postgresql://db1/cc?user=app&password=x1&sslmode=require") == (
        "postgresql://db1/cc?user=app&password=***&sslmode=require")
    assert mask_url("postgresql://app@db1/cc") == "postgresql://app@db1/cc"
