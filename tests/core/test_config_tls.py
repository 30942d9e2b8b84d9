"""The TLS keys of [ami] and [smpp]: off unless asked for, every mistake listed, exit 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccshortlink.config.settings import ConfigError, load_config
from tests.support.configfile import write_config

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_without_tls_keys_both_links_stay_plain_tcp(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert config.ami.tls is None and config.smpp.tls is None


def test_tls_on_checks_the_host_name_with_the_system_cas_by_default(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, ami={"host": "pbx.example.com", "tls": True},
                                      smpp={"host": "smsc.example.net", "tls": True}))
    assert config.ami.tls is not None and config.smpp.tls is not None
    assert (config.ami.tls.server_name, config.ami.tls.ca_file) == ("pbx.example.com", None)
    assert config.smpp.tls.server_name == "smsc.example.net"
    assert config.ami.tls.verify and config.smpp.tls.verify  # on unless turned off
    assert config.ami.tls.min_version == config.smpp.tls.min_version == "1.2"


def test_a_relative_ca_file_is_found_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.pem").write_text(PEM)
    config = load_config(write_config(
        tmp_path, ami={"host": "10.0.0.5", "tls": True, "tls_ca_file": "tls/ca.pem",
                       "tls_server_name": "pbx.internal"},
        smpp={"tls": True, "tls_ca_file": str(tmp_path / "tls" / "ca.pem"),
              "tls_min_version": "1.3"}))
    assert config.ami.tls is not None and config.smpp.tls is not None
    assert config.ami.tls.ca_file == tmp_path.resolve() / "tls" / "ca.pem"
    assert config.ami.tls.server_name == "pbx.internal"
    assert config.smpp.tls.ca_file == tmp_path / "tls" / "ca.pem"
    assert config.smpp.tls.min_version == "1.3"


def test_every_tls_mistake_is_listed_at_once(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    (tmp_path / "certs").mkdir()
    path = write_config(
        tmp_path,
        ami={"tls": True, "tls_ca_file": "missing.pem", "tls_min_version": "1.0",
             "tls_server_name": "pbx example"},
        smpp={"tls": True, "tls_ca_file": "notes.txt", "tls_verify": "yes"},
        web={"listen": "nowhere"})
    problems = problems_of(path)
    expected = [
        "[ami] tls_min_version must be \"1.2\" or \"1.3\", got '1.0'",
        "[ami] tls_server_name must be a host name or an IP address, got 'pbx example'",
        f"[ami] tls_ca_file {tmp_path.resolve() / 'missing.pem'}: not found",
        "[smpp] tls_verify must be bool, got 'yes'",
        f"[smpp] tls_ca_file {tmp_path.resolve() / 'notes.txt'}: has no PEM certificate "
        "(no -----BEGIN CERTIFICATE----- line)",
    ]
    for problem in expected:
        assert problem in problems, problems
    assert any("[web] listen" in p for p in problems)
    assert len(problems) == len(expected) + 1
    (tmp_path / "notes.txt").unlink()
    folder = write_config(tmp_path, ami={"tls": True, "tls_ca_file": "certs"})
    assert f"[ami] tls_ca_file {tmp_path.resolve() / 'certs'}: is not a regular file" in \
        problems_of(folder)


def test_tls_keys_without_tls_on_are_refused_not_ignored(tmp_path: Path) -> None:
    """A CA file with tls left off would send the secret in clear to someone who thinks not."""
    (tmp_path / "ca.pem").write_text(PEM)
    problems = problems_of(write_config(
        tmp_path, ami={"tls_ca_file": "ca.pem", "tls_server_name": "pbx"},
        smpp={"tls": False, "tls_min_version": "1.3"}))
    assert problems == [
        "[ami] tls_ca_file, tls_server_name set but tls is off: add tls = true, or remove them",
        "[smpp] tls_min_version set but tls is off: add tls = true, or remove them",
    ]


def test_a_ca_file_with_verification_off_is_a_contradiction(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(PEM)
    problems = problems_of(write_config(
        tmp_path, smpp={"tls": True, "tls_ca_file": "ca.pem", "tls_verify": False}))
    assert problems == ["[smpp] tls_ca_file is unused with tls_verify = false: remove one of them"]


def test_check_config_exits_78_on_an_unusable_ca_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, ami={"tls": True, "tls_ca_file": "nowhere/ca.pem"},
                        smpp={"tls": True, "tls_ca_file": "nowhere/ca.pem"})
    for command in ("check-config", "run"):
        done = subprocess.run([sys.executable, "-m", "ccshortlink", command, "-c", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 78, done.stderr
        assert "[ami] tls_ca_file" in done.stderr and "[smpp] tls_ca_file" in done.stderr
        assert "Traceback" not in done.stderr


def test_unverified_tls_is_a_check_config_warning(tmp_path: Path) -> None:
    path = write_config(tmp_path, ami={"tls": True, "tls_verify": False})
    done = subprocess.run([sys.executable, "-m", "ccshortlink", "check-config", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "[ami] tls_verify = false" in done.stdout + done.stderr
