"""Bad configuration files through the real CLI: exit 78, one clear message, no traceback, fast."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.configfile import ROOT, write_config

CLI = str(ROOT / ".venv" / "bin" / "ccshortlink")
BOMB = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}{{ url }}"
BIG_RANGE = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
EXPONENTIAL = ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
               "{{ f(60) }}{{ url }}")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=30,
                          check=False)


def cli_many(commands: list[list[str]]) -> list[tuple[int, str, float, str]]:
    """Each command's exit code, stderr, seconds taken and stdout, all started at once."""
    started = time.monotonic()
    running = [subprocess.Popen([CLI, *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for c in commands]
    results = []
    for process in running:
        stdout, stderr = process.communicate(timeout=30)
        results.append((process.returncode, stderr, time.monotonic() - started, stdout))
    return results


def broken_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of unusable file an admin can write, and what the refusal must say."""
    good = write_config(folder).read_bytes()
    files: dict[str, tuple[Path, str]] = {
        "missing": (folder / "nowhere.toml", "file not found"),
        "directory": (folder / "conf.d", "is a directory"),
        "fifo": (folder / "pipe.toml", "is not a regular file"),
        "through a file": (folder / "ccshortlink.toml" / "x.toml", "cannot be read"),
        "non-UTF-8": (folder / "latin1.toml", "not UTF-8 text: byte 0xe9 on line 2"),
        "invalid TOML": (folder / "bad.toml", "not valid TOML"),
        "truncated": (folder / "cut.toml", "not valid TOML"),
    }
    (folder / "conf.d").mkdir()
    os.mkfifo(folder / "pipe.toml")
    (folder / "latin1.toml").write_bytes(b"# ccshortlink\n# caf\xe9\n" + good)
    (folder / "bad.toml").write_text("[ami\nhost = \n")
    cut = good.index(b"s3cret") + 3  # inside a quoted string
    (folder / "cut.toml").write_bytes(good[:cut])
    return files


def test_unusable_files_are_one_clear_refusal(tmp_path: Path) -> None:
    cases = [(kind, command, path, reason)
             for kind, (path, reason) in broken_files(tmp_path).items()
             for command in ("check-config", "run")]
    results = cli_many([[command, "-c", str(path)] for _, command, path, _ in cases])
    for (kind, command, path, reason), (code, stderr, seconds, _) in zip(cases, results,
                                                                     strict=True):
        assert code == 78, (kind, command, stderr)
        assert f"configuration error in {path}: 1 problem(s)" in stderr, kind
        assert reason in stderr, (kind, stderr)
        assert "Traceback" not in stderr, kind
        assert seconds < 20, kind  # all 14 together on a busy machine: none blocks (a FIFO)


def test_every_command_that_reads_the_config_refuses_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "conf.d"
    path.mkdir()
    commands = [["check-config"], ["run"], ["trace", "+8613800138000"], ["stats"], ["agents"],
                ["opt-out", "list"], ["opt-out", "add", "+8613800138000"],
                ["send", "--agent", "CS1001", "--to", "+8613800138000"]]
    results = cli_many([[*c, "-c", str(path)] for c in commands])
    for command, (code, stderr, _, _) in zip(commands, results, strict=True):
        assert code == 78, (command, stderr)
        assert f"{path}: 1 problem(s)" in stderr and "is a directory" in stderr, command
        assert "Traceback" not in stderr, command


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file regardless")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.chmod(0)
    result = cli("check-config", "-c", str(path))
    assert result.returncode == 78 and "permission denied" in result.stderr


BAD_TEMPLATES = [
    (BOMB, "more than 10000 loop iterations"),
    (BIG_RANGE, "range of 99999 numbers, at most 10000"),
    (EXPONENTIAL, "rendering took longer than"),
    ("{# {{ url }} #}您好", "renders without the link"),
    ("{% if false %}{{ url }}{% endif %}您好", "renders without the link"),
    ("{{ url }}{{ 1 / 0 }}", "ZeroDivisionError"),
    ("{{ url }}{% if %}", "does not compile: TemplateSyntaxError"),
]


def test_a_bad_template_is_a_config_problem_found_fast(tmp_path: Path) -> None:
    cases = []
    for number, (template, reason) in enumerate(BAD_TEMPLATES):
        folder = tmp_path / str(number)
        folder.mkdir()
        cases.append((write_config(folder, sms={"template": template}), reason))
    results = cli_many([["check-config", "-c", str(path)] for path, _ in cases])
    for (_, reason), (code, stderr, _, _) in zip(cases, results, strict=True):
        assert code == 78, stderr
        assert "[sms] template for 'zh-CN'" in stderr and reason in stderr, stderr
        assert "Traceback" not in stderr
    # The bombs one at a time, timed: cut off, not waited out, and refused before `run`
    # touches AMI, SMPP or the web port.
    for path, reason in (cases[0], cases[2]):
        for command in ("check-config", "run"):
            started = time.monotonic()
            result = cli(command, "-c", str(path))
            assert time.monotonic() - started < 5
            assert result.returncode == 78 and reason in result.stderr


def test_strict_keys_numbers_and_smpp_lengths_through_the_cli(tmp_path: Path) -> None:
    path = write_config(tmp_path, web={"api_tokn": "x"}, smpp={"password": "change-me"})
    path.write_text(path.read_text().replace("min_talk_seconds = 1", "min_talk_seconds = nan")
                    + "\n[polcy]\nmobile_only = true\n")
    result = cli("check-config", "-c", str(path))
    assert result.returncode == 78
    for fragment in ("unknown key [web] api_tokn (did you mean api_token?)",
                     "unknown section [polcy] (did you mean policy?)",
                     "[policy] min_talk_seconds must be a finite number",
                     "[smpp] password is 9 bytes, SMPP 3.4 allows at most 8"):
        assert fragment in result.stderr
    assert "4 problem(s)" in result.stderr


def test_the_shipped_example_passes_its_own_check_with_warnings() -> None:
    result = cli("check-config", "-c", str(ROOT / "etc" / "ccshortlink.toml"))
    assert result.returncode == 0, result.stderr
    assert "OK (2 agents from" in result.stdout
    assert "template zh-CN: 1 part, UCS-2" in result.stdout
    assert "warning: [smpp] password is still an example value" in result.stderr
    assert "warning: [ami] secret is still an example value" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_warns_but_accepts(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the database folder should be")
    path = write_config(tmp_path, ami={"secret": "changeme"}, database={"path": "blocker/x.db"},
                        web={"public_url": "http://cs.example.com"},
                        sms={"template": "您好" * 30 + "{{ url }}"})
    result = cli("check-config", "-c", str(path))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 7, result.stderr
    assert "[ami] secret is still an example value" in result.stderr
    # the carriers' asks: a way to opt out, the signature, a hotline for HELP
    assert "zh-CN template does not say how to opt out ('回TD退订')" in result.stderr
    assert "no signature for zh-CN: carriers in mainland China require" in result.stderr
    assert "[web] hotline is not set: the answer to HELP" in result.stderr
    assert "changeme" not in result.stderr  # the secret itself is never shown
    assert "blocker is not a folder" in result.stderr
    assert "public_url 'http://cs.example.com' is not https" in result.stderr
    assert "zh-CN template (default language) needs 2 SMS parts" in result.stderr
    assert not (tmp_path / "blocker" / "x.db").exists()


def test_every_subcommand_says_what_it_does() -> None:
    commands = ["run", "check-config", "send", "demo", "trace", "stats", "agents", "opt-out",
                "sms"]
    top, *helps = cli_many([["--help"]] + [[command, "--help"] for command in commands])
    for command, (_, _, _, own) in zip(commands, helps, strict=True):
        listed = [line for line in top[3].splitlines() if line.strip().startswith(command + " ")]
        assert listed and len(listed[0].split()) > 2, (command, top)  # its one line
        description = own.split("\n\n")[1]
        assert description[0].isupper() and description.rstrip().endswith("."), own
