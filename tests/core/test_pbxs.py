"""Several PBXs: [[ami]] tables, agents qualified by PBX name, and a tracker per PBX."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from ccshortlink.app.pbxflows import PbxFlows, ami_health
from ccshortlink.app.reloading import agent_lookup
from ccshortlink.config.agents import AgentsError, load_agents, parse_agents
from ccshortlink.config.settings import ConfigError, load_config
from ccshortlink.core.calls import CallClosed, CallEnded, Outcome, SendRequested
from ccshortlink.core.policy import PolicyConfig
from tests.support.configfile import write_config
from tests.support.quiet import Counts, Quiet
from tests.support.transcripts import events_of

PBX_A = {"name": "site-a", "host": "10.0.0.1", "port": 5038, "username": "ccshortlink",
         "secret": "s3cret"}
PBX_B = {"name": "site-b", "host": "10.0.0.2", "port": 5039, "username": "cc", "secret": "x2",
         "tls": True, "tls_server_name": "pbx-b.example.com"}
AGENTS = """\
agents:
  - id: ANN
    extensions: ["site-a:1001"]
    name: Ann
    phone: "+862088880001"
  - id: BOB
    extensions:
      - {pbx: site-b, extension: "1001"}
      - site-b:PJSIP/desk-bob
    name: Bob
    phone: "+862088880002"
  - id: CAT
    extensions: ["1002"]
    name: Cat
    phone: "+862088880003"
"""


def pbx_config(tmp_path: Path, *tables: dict[str, object], plain: bool = False) -> Path:
    """A complete config whose [ami] is replaced by [[ami]] tables (or one plain [ami])."""
    path = write_config(tmp_path)
    lines = [line for line in path.read_text().split("\n\n") if not line.startswith("[ami]")]
    blocks = []
    for table in tables:
        rows = "\n".join(f"{k} = {v!r}" if not isinstance(v, bool) else f"{k} = {str(v).lower()}"
                         for k, v in table.items())
        blocks.append(("[ami]\n" if plain else "[[ami]]\n") + rows.replace("'", '"'))
    path.write_text("\n\n".join(blocks + lines))
    return path


# --- config ---------------------------------------------------------------------------------

def test_a_plain_ami_table_is_the_pbx_named_default(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert [pbx.name for pbx in config.pbxs] == ["default"]
    assert config.ami is config.pbxs[0] and config.ami.port == 5038
    named = load_config(pbx_config(tmp_path, PBX_A, plain=True))
    assert [pbx.name for pbx in named.pbxs] == ["site-a"]


def test_ami_tables_list_several_pbxs_each_with_every_ami_key(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    config = load_config(pbx_config(tmp_path, PBX_A, {**PBX_B, "tls_ca_file": "ca.pem",
                                                      "reconnect_max": 2.5}))
    a, b = config.pbxs
    assert (a.name, a.host, a.port, a.tls) == ("site-a", "10.0.0.1", 5038, None)
    assert (b.name, b.port, b.reconnect_max, b.username) == ("site-b", 5039, 2.5, "cc")
    assert b.tls is not None and b.tls.server_name == "pbx-b.example.com"
    assert b.tls.ca_file == ca.resolve()
    assert config.ami is a  # what a single-PBX caller reads: the first
    assert "x2" not in repr(config.pbxs)  # the secrets never reach a log line


def test_every_ami_table_problem_is_listed_with_the_others(tmp_path: Path) -> None:
    path = pbx_config(
        tmp_path, PBX_A,
        {"host": "10.0.0.3", "port": 5038, "username": "u", "secret": "s"},  # no name
        {**PBX_A, "host": "10.0.0.4", "name": "site-a"},  # the same name again
        {**PBX_B, "name": "Site_C", "port": 70000},  # a bad name and port
        {**PBX_B, "name": "site-d", "host": "10.0.0.1", "port": 5038,  # site-a's address
         "tls": False, "colour": "blue"})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert "[ami #2] name is required" in problems
    assert '[ami "site-a"] name is used by another [[ami]] table: each PBX needs its own name' \
        in problems
    assert any(p.startswith("[ami #4] name must be lowercase letters, digits and hyphens")
               and "'Site_C'" in p for p in problems)
    assert "[ami #4] port must be in 1..65535, got 70000" in problems
    assert any(p.startswith('[ami "site-d"] 10.0.0.1:5038 is also [ami "site-a"]\'s')
               for p in problems)
    assert any(p.startswith('[ami "site-d"] tls_server_name set but tls is off')
               for p in problems)
    assert any(p.startswith('unknown key [ami "site-d"] colour') for p in problems)
    assert len(problems) == 7, problems


def test_check_config_lists_the_pbxs_and_exits_78_on_a_problem(tmp_path: Path) -> None:
    plain_b = {key: value for key, value in PBX_B.items() if not key.startswith("tls")}
    good = pbx_config(tmp_path, PBX_A, plain_b)
    ok = subprocess.run([sys.executable, "-m", "ccshortlink", "check-config", "-c", str(good)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "PBXs: site-a (10.0.0.1:5038), site-b (10.0.0.2:5039)" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace('name = "site-b"', 'name = "site-a"')
                   .replace("[web]", "[web]\ncolour = 1"))
    failed = subprocess.run([sys.executable, "-m", "ccshortlink", "check-config", "-c", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 78
    assert "each PBX needs its own name" in failed.stderr and "colour" in failed.stderr
    # An agents file naming a PBX the config does not have is refused by both commands.
    (tmp_path / "agents.yaml").write_text(AGENTS.replace("site-b", "site-c"))
    for command in ("check-config", "agents"):
        refused = subprocess.run([sys.executable, "-m", "ccshortlink", command, "-c", str(good)],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 78, refused.stderr
        assert "extensions name PBX 'site-c', which no [[ami]] table names " \
            "(known: site-a, site-b)" in refused.stderr


def test_an_empty_or_malformed_ami_array_is_a_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    text = path.read_text().split("\n\n", 1)[1]
    path.write_text("ami = []\n" + text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "[[ami]] lists no PBX: add at least one [[ami]] table" in info.value.problems
    path.write_text("ami = [1]\n" + text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "[[ami]] item 1 must be a table" in info.value.problems


# --- agents ---------------------------------------------------------------------------------

def test_an_extension_qualified_by_a_pbx_means_its_agent_there_only(tmp_path: Path) -> None:
    agents = parse_agents(AGENTS, tmp_path / "agents.yaml")
    assert agents.by_id("BOB") is not None
    bob = agents.by_id("BOB")
    assert bob is not None and bob.extensions == ("site-b:1001", "site-b:PJSIP/desk-bob")

    def who(extension: str, pbx: str) -> str | None:
        agent = agents.by_extension(extension, pbx)
        return agent.id if agent else None

    assert (who("1001", "site-a"), who("1001", "site-b"), who("1001", "site-c")) == \
        ("ANN", "BOB", None)
    # Unqualified: the same agent on every PBX, as every agents file before meant.
    assert (who("1002", "site-a"), who("1002", "site-b"), who("1002", "")) == ("CAT",) * 3
    assert who("site-b:1001", "") == "BOB" and who("site-b:1001", "site-a") is None
    assert agents.pbx_names == {"site-a", "site-b"}
    # A qualified channel name: Bob's desk phone is an agent's channel on site-b only.
    on_b, on_a = agent_lookup(agents, "site-b"), agent_lookup(agents, "site-a")
    assert on_b("PJSIP/desk-bob-00000007", "") == "1001" and who("1001", "site-b") == "BOB"
    assert on_a("PJSIP/desk-bob-00000007", "") is None


def test_qualified_extensions_are_checked_like_the_others(tmp_path: Path) -> None:
    text = AGENTS + """\
  - id: DAN
    extensions: ["site-a:1001", "Site-A:1003", {pbx: site-b}, {pbx: "x y", extension: "1"},
                 {pbx: site-b, extension: "1004", desk: 3}]
    name: Dan
    phone: "+862088880004"
"""
    with pytest.raises(AgentsError) as info:
        parse_agents(text, tmp_path / "agents.yaml")
    problems = [p.split(": ", 1)[1] for p in info.value.problems]
    assert "extension 'site-a:1001' already belongs to 'ANN'" in problems
    assert any(p.startswith("extension 'Site-A:1003' is neither digits") and "site-a:1001" in p
               for p in problems)
    assert "an extension with a 'pbx' needs its 'extension' (e.g. '1001')" in problems
    assert "an extension's 'pbx' must be a PBX name from [[ami]] (e.g. 'site-a')" in problems
    assert "unknown extension field 'desk'" in problems
    assert len(problems) == 5, problems


def test_a_pbx_name_no_ami_table_has_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(AGENTS)
    assert len(load_agents(path, ["site-a", "site-b"])) == 3
    with pytest.raises(AgentsError) as info:
        load_agents(path, ["default"])
    assert info.value.problems == [
        f"{path}: extensions name PBX 'site-a', which no [[ami]] table names (known: default)",
        f"{path}: extensions name PBX 'site-b', which no [[ami]] table names (known: default)"]


# --- one tracker per PBX --------------------------------------------------------------------

def flows(tmp_path: Path) -> PbxFlows:
    agents = parse_agents(AGENTS, tmp_path / "agents.yaml")
    return PbxFlows.build(["site-a", "site-b"], PolicyConfig(min_talk_seconds=1), agents,
                          Quiet(), calls_seen=Counts(), calls_ended=Counts())


def drain(queue: asyncio.Queue[Outcome]) -> list[Outcome]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


def test_the_same_linkedid_on_two_pbxs_is_two_calls(tmp_path: Path) -> None:
    calls = flows(tmp_path)
    events = events_of("01-sip-answered-customer-hangup.txt")
    half = len(events) // 2
    # Both Asterisks number their channels alike: interleaved, each is still its own call.
    for event in events[:half]:
        calls.on_event("site-a", event, 1)
        calls.on_event("site-b", event, 1)
    assert calls.calls_in_progress() == {"site-a": ["1795460028.0"], "site-b": ["1795460028.0"]}
    for event in events[half:]:
        calls.on_event("site-a", event, 1)
    for event in events[half:]:
        calls.on_event("site-b", event, 1)
    ended = drain(calls.outcomes)
    assert [(o.pbx, o.linkedid, o.agent_extension) for o in ended] == [
        ("site-a", "1795460028.0", "1001"), ("site-b", "1795460028.0", "1001")]
    assert all(isinstance(o, CallEnded) for o in ended)


def test_star55_is_resolved_within_its_own_pbx(tmp_path: Path) -> None:
    calls = flows(tmp_path)
    for event in events_of("01-sip-answered-customer-hangup.txt"):  # a call on site-b only
        calls.on_event("site-b", event, 1)
    for event in events_of("05-userevent-sendcard.txt"):  # then 1001 dials *55 on each PBX
        calls.on_event("site-b", event, 1)
        calls.on_event("site-a", event, 1)
    requests = [o for o in drain(calls.outcomes) if isinstance(o, SendRequested)]
    by_pbx = {o.pbx: o for o in requests}
    assert by_pbx["site-b"].customer_number == "+8613800138000" and not by_pbx["site-b"].reason
    assert by_pbx["site-a"].customer_number == ""  # site-a had no call for its 1001
    assert by_pbx["site-a"].reason == "no recent call for this agent"


def test_a_restart_of_one_pbx_closes_only_its_calls(tmp_path: Path) -> None:
    calls = flows(tmp_path)
    events = events_of("01-sip-answered-customer-hangup.txt")
    talking = [e for e in events if e.get("Event") != "Hangup"][:12]
    for event in talking:
        calls.on_event("site-a", event, 1)
        calls.on_event("site-b", event, 1)
    # site-a's session drops and a new Asterisk (counting channels from 0 again) comes back.
    fresh = {**events[1], "Uniqueid": "1795460999.0", "Linkedid": "1795460999.0"}
    calls.on_event("site-a", fresh, 2)
    closed = [o for o in drain(calls.outcomes) if isinstance(o, CallClosed)]
    assert [(o.pbx, o.trigger) for o in closed] == [("site-a", "pbx_restart")]
    assert calls.calls_in_progress()["site-b"] == ["1795460028.0"]


def test_healthz_ami_state_is_up_degraded_or_down() -> None:
    assert ami_health(["default"], {"default": True}) == {"ami": "up"}
    assert ami_health(["default"], {}) == {"ami": "down"}
    assert ami_health(["a", "b"], {"a": True, "b": False}) == {
        "ami": "degraded", "pbxs": {"a": "up", "b": "down"}}
    assert ami_health(["a", "b"], {"a": False})["ami"] == "down"
