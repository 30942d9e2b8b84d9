"""Configuration and agents files: every problem reported at once, exit code 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccshortlink.agents import AgentsError, load_agents, parse_agents
from ccshortlink.config import ConfigError, load_config

from conftest import ROOT, write_config


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
