"""The agents YAML read as written: literal text, no duplicate keys, no aliases, fast."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ccshortlink.config import agentsyaml
from ccshortlink.config.agents import AgentsError, load_agents, parse_agents
from ccshortlink.core.calls import default_agent_lookup
from tests.support.configfile import write_config


def problems_of(text: str, folder: Path) -> list[str]:
    """Every problem found in `text`; none when it is a valid agents file."""
    try:
        parse_agents(text, folder / "agents.yaml")
    except AgentsError as exc:
        return exc.problems
    return []


def agent(extensions: str, phone: str = "'1'", agent_id: str = "CS1") -> str:
    return (f"agents:\n  - id: {agent_id}\n    extensions: {extensions}\n    name: Ann\n"
            f"    phone: {phone}\n")


def test_numbers_stay_as_written(tmp_path: Path) -> None:
    text = agent("[01001, 1001, '*55', +8613800138000, '#7', PJSIP/desk-ann]",
                 phone="+8613800138000", agent_id="007") + (
        "  - id: CS2\n    extensions: [2001]\n    name: Bo\n    phone: 08613800138000\n"
        "    satisfaction: 4.90\n    calls_handled: 0012\n"
        "    service_records: [{title: Star, date: 2025-12}]\n"
        "    reviews: [{stars: 5, text: yes, date: 2026-10-02}]\n"
        "channel_map:\n  SIP/trunk-7: 01001\n")
    agents = parse_agents(text, tmp_path / "agents.yaml")
    first, second = agents.agents
    # YAML 1.1 read 01001 as octal 513, +86… as an int without its +, 007 as 7
    assert first.extensions == ("01001", "1001", "*55", "+8613800138000", "#7", "PJSIP/desk-ann")
    assert (first.id, first.phone) == ("007", "+8613800138000")
    assert second.phone == "08613800138000"
    assert (second.satisfaction, second.calls_handled) == (4.9, 12)
    assert second.service_records[0].date == "2025-12"
    assert (second.reviews[0].text, second.reviews[0].date) == ("yes", "2026-10-02")
    assert agents.by_extension("01001") is first and agents.by_extension("513") is None
    assert agents.channel_map["SIP/trunk-7"] == "01001"


@pytest.mark.parametrize(("written", "shown"), [
    ("null", "null"), ("~", "null"), ("1.5", "'1.5'"), ("true", "'true'"), ("no", "'no'"),
    ("2025-01-01", "'2025-01-01'"), ("[1001]", "a list"), ("{a: b}", "a mapping"),
    ("agent-ann", "'agent-ann'"), ("''", "''"), ("'10 01'", "'10 01'"), ("1e3", "'1e3'"),
])
def test_anything_but_digits_or_a_channel_is_an_extension_problem_with_its_line(
        tmp_path: Path, written: str, shown: str) -> None:
    text = "agents:\n  - id: CS1\n    extensions:\n      - '1001'\n" \
        f"      - {written}\n    name: Ann\n    phone: '1'\n"
    [problem] = problems_of(text, tmp_path)
    assert problem.startswith(f"{tmp_path / 'agents.yaml'}:5: extension {shown} is neither digits")
    assert "PJSIP/desk-ann" in problem


def test_a_channel_name_among_the_extensions_finds_its_agent(tmp_path: Path) -> None:
    text = agent("['1001', PJSIP/desk-ann, Local/2001@from-queue]") + \
        "  - id: CS2\n    extensions: [PJSIP/bo]\n    name: Bo\n    phone: '2'\n"
    agents = parse_agents(text, tmp_path / "agents.yaml")
    lookup = default_agent_lookup(lambda ext: agents.by_extension(ext) is not None,
                                  agents.channel_map)
    assert lookup("PJSIP/desk-ann-0000002a", "Ann") == "1001"
    assert lookup("Local/2001@from-queue-00000001;2", "") == "1001"
    found = lookup("PJSIP/bo-00000003", "Bo")
    assert found is not None and agents.by_extension(found).id == "CS2"  # type: ignore[union-attr]
    assert lookup("PJSIP/carol-00000004", "Carol") is None


def test_duplicate_keys_are_problems_naming_both_lines(tmp_path: Path) -> None:
    text = agent("['1001']") + "    name: Bob\nagents:\n  - id: CS9\n"
    path = tmp_path / "agents.yaml"
    assert problems_of(text, tmp_path) == [f"{path}:6: duplicate key 'name' (first at line 4)",
                                     f"{path}:7: duplicate key 'agents' (first at line 1)"]


def test_every_problem_of_the_file_at_once(tmp_path: Path) -> None:
    text = ("agent: x\nagents:\n  - id: CS1\n    extensions: [null]\n    name: A\n    name: B\n"
            "    phone: '1'\n    satisfaction: nan\n    calls_handled: 0x10\n    langauge: en\n"
            "    reviews: [{stars: 6}]\nchannel_map: {SIP/x: '9999', bad name: '1001'}\n")
    path = tmp_path / "agents.yaml"
    problems = problems_of(text, tmp_path)
    for expected in (f"{path}:6: duplicate key 'name' (first at line 5)",
                     f"{path}:1: unknown top-level key 'agent' (did you mean 'agents'?)",
                     f"{path}:4: extension null is neither digits",
                     f"{path}:3: 'satisfaction' must be a score from 1 to 5",
                     f"{path}:3: 'calls_handled' must be a whole number >= 0, got '0x10'",
                     f"{path}:3: unknown field 'langauge' (did you mean 'language'?)",
                     f"{path}:11: review 'stars' must be 1..5",
                     f"{path}:12: channel_map 'SIP/x' maps to '9999', which is no agent's",
                     f"{path}:12: channel_map key 'bad name' must be a channel name"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == 9


@pytest.mark.parametrize("score", ["nan", "inf", ".inf", "1e0", "0.5", "5.01", "'4,5'"])
def test_satisfaction_is_a_plain_score_from_1_to_5(tmp_path: Path, score: str) -> None:
    problems = problems_of(agent("['1001']") + f"    satisfaction: {score}\n", tmp_path)
    assert problems == [f"{tmp_path / 'agents.yaml'}:2: 'satisfaction' must be a score from 1 to 5"]


def test_aliases_tags_and_second_documents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    text = ("agents:\n  - id: &x CS1\n    extensions: [*x, *x]\n    name: !!python/name:os.system\n"
            "    phone: !!str 01\n---\nagents: []\n")
    null_extension = (f"{path}:3: extension null is neither digits (e.g. '01001', '*55', "
                      "'+862088880000') nor a channel name (e.g. 'PJSIP/desk-ann')")
    assert problems_of(text, tmp_path) == [
        (f"{path}:4: YAML tag 'tag:yaml.org,2002:python/name:os.system' is not supported: "
         "write the value as plain text"),
        f"{path}:6: a second YAML document ('---'): write one document only",
        (f"{path}:3: YAML aliases (*name) are not allowed (and 1 more): write each value out "
         "in full"),
        null_extension, null_extension,
    ]


def test_broken_yaml_reads_the_same_with_or_without_libyaml(tmp_path: Path) -> None:
    text = agent("['1001']").replace("    phone", "   phone")
    [problem] = problems_of(text, tmp_path)
    assert problem == (f"{tmp_path / 'agents.yaml'}:5: not valid YAML: expected <block end>, "
                       "but found '<block mapping start>'")


@pytest.mark.parametrize("nesting", [
    "[" * 100_000 + "]" * 100_000,  # beyond libyaml's nesting limit
    "[" * 900 + "1, " * 5_000 + "}",  # short enough to be read again for PyYAML's wording
    "[" * 900 + "1, " * 20_000 + "}",  # too long for that: libyaml's wording
])
def test_deep_nesting_is_refused_quickly(tmp_path: Path, nesting: str) -> None:
    started = time.thread_time()  # CPU, not wall time: other work on the box does not count
    [problem] = problems_of(agent(nesting), tmp_path)
    # PyYAML's own parser, quadratic in nesting, took 110 s over the first of these
    assert time.thread_time() - started < 5.0  # about 1 s each here
    assert problem.startswith(f"{tmp_path / 'agents.yaml'}:3: not valid YAML: ")


def big_agents_file(path: Path, count: int) -> Path:
    path.write_text("agents:\n" + "".join(
        f"  - id: CS{100000 + i}\n    extensions: [{100000 + i}]\n    name: Agent {i}\n"
        f"    phone: \"+862088880000,,{100000 + i}\"\n    title: Specialist\n"
        f"    satisfaction: 4.5\n    calls_handled: {i}\n" for i in range(count)),
        encoding="utf-8")
    return path


def test_twenty_thousand_agents_load_in_well_under_a_few_seconds(tmp_path: Path) -> None:
    if yaml.__with_libyaml__:
        assert agentsyaml._PARSER is yaml.CSafeLoader
    path = big_agents_file(tmp_path / "agents.yaml", 20_000)
    started = time.thread_time()  # CPU of this thread: a loaded box stretches only wall time
    agents = load_agents(path)
    elapsed = time.thread_time() - started
    assert len(agents) == 20_000 and agents.by_extension("119999") is agents.agents[-1]
    # 0.65 s measured with libyaml on the 2-core CI box; PyYAML's own loader took 8.1 s
    assert elapsed < 4.0, f"{elapsed:.2f} s"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ['l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + (f"\nagents:\n  - id: CS1\n    extensions: *l{levels}\n"
                               "    name: Ann\n    phone: '1'\n")


def limit_memory() -> None:
    gib = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (gib, gib))


@pytest.mark.parametrize("command", ["agents", "check-config"])
def test_an_alias_bomb_fails_fast_in_bounded_memory(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path)
    (tmp_path / "agents.yaml").write_text(alias_bomb(), encoding="utf-8")
    def child_cpu() -> float:  # CPU, not wall time: a loaded box stretches only the latter
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    started = child_cpu()
    # Under a 1 GiB address-space cap: expanding the bomb would need 2.5 GB and die of it.
    result = subprocess.run([sys.executable, "-m", "ccshortlink", command, "-c", str(config)],
                            capture_output=True, text=True, timeout=30, check=False,
                            preexec_fn=limit_memory)
    elapsed = child_cpu() - started
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert f"{tmp_path / 'agents.yaml'}:2: YAML aliases (*name) are not allowed (and 81 more)" \
        in result.stderr
    assert f"{tmp_path / 'agents.yaml'}:10: unknown top-level key 'l9'" in result.stderr
    assert elapsed < 2.0, f"{elapsed:.2f} s"
