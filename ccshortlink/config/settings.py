"""Read ccshortlink.toml into frozen dataclasses, reporting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ccshortlink.config.ami import DEFAULT_PBX, AmiConfig, read_pbxs
from ccshortlink.config.callback import CallbackConfig, read_callback
from ccshortlink.config.database import DatabaseConfig, read_database
from ccshortlink.config.file import ConfigError, read_toml
from ccshortlink.config.missedcall import check_missed_call
from ccshortlink.config.policy import read_policy
from ccshortlink.config.reader import Reader, report_unknown_sections
from ccshortlink.config.smpp import SmppConfig, read_smpp
from ccshortlink.config.sms import DEFAULT_TEMPLATES, SmsConfig, read_sms
from ccshortlink.config.smstexts import check_reply_texts
from ccshortlink.config.web import WebConfig, read_web
from ccshortlink.core.links import check_templates
from ccshortlink.core.policy import PolicyConfig

# The section types are re-exported: callers name them from here.
__all__ = ["DEFAULT_PBX", "DEFAULT_TEMPLATES", "AmiConfig", "CallbackConfig", "Config",
           "ConfigError", "SmppConfig", "SmsConfig", "WebConfig", "load_config", "parse_config"]


@dataclass(frozen=True)
class Config:
    path: Path
    pbxs: tuple[AmiConfig, ...]  # one per PBX: the plain [ami] table, or each [[ami]] table
    smpp: SmppConfig
    web: WebConfig
    database_path: Path
    agents_file: Path
    policy: PolicyConfig
    sms: SmsConfig
    log_level: str = "info"
    retention_days: float = 365.0
    # The whole stop, every part's bound derived from it: inside systemd's TimeoutStopSec=30.
    stop_timeout: float = 25.0
    # [database]: database_path above is the SQLite file; with a url, PostgreSQL instead.
    database: DatabaseConfig | None = None
    callback: CallbackConfig = CallbackConfig()  # [callback]: off unless enabled

    @property
    def db(self) -> DatabaseConfig:
        return self.database or DatabaseConfig(path=self.database_path)

    @property
    def ami(self) -> AmiConfig:
        """The first (with a plain [ami] table, the only) PBX's settings."""
        return self.pbxs[0]


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


SECTIONS = ["ami", "smpp", "web", "database", "agents", "policy", "sms", "log", "retention",
            "daemon", "callback"]


def _log_level(log: Reader) -> str:
    level = log.text("level", "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        log.problems.append(f"[log] level must be debug, info, warning or error, got {level!r}")
    return level


def parse_config(data: dict[str, Any], path: Path, *, render_templates: bool = False) -> Config:
    """Build a Config from parsed TOML; raise ConfigError listing every problem.

    With `render_templates`, each SMS template is also rendered in the bounded sandbox, so its
    problems come in the same list (trace and stats leave it off: a template never stops them).
    Sections are read in a fixed order, so the problems always come in the same order.
    """
    problems: list[str] = []
    base = path.parent.resolve()
    for section in ("ami", "smpp", "web", "database", "agents"):
        if section not in data:
            problems.append(f"[{section}] section is missing")
    report_unknown_sections(data, SECTIONS, problems)
    readers: list[Reader] = []

    def read(name: str) -> Reader:
        # Made as its section comes: "[x] must be a table" falls among that section's problems.
        readers.append(Reader(data, name, problems))
        return readers[-1]

    pbxs, ami_readers = read_pbxs(data, base, problems)
    readers += ami_readers
    smpp_cfg = read_smpp(read("smpp"), base)
    web_cfg = read_web(read("web"))
    database = read_database(read("database"), base)
    agents_file = _resolve(base, read("agents").text("file", "agents.yaml", required=True))
    policy_cfg = read_policy(read("policy"))
    sms_cfg = read_sms(read("sms"))
    level = _log_level(read("log"))
    retention_days = read("retention").number("days", 365.0, minimum=1, maximum=36500)
    stop_timeout = read("daemon").number("stop_timeout", 25.0, minimum=1, maximum=600)
    callback_cfg = read_callback(read("callback"))
    if callback_cfg.pbx and callback_cfg.pbx not in {pbx.name for pbx in pbxs}:
        problems.append(f"[callback] pbx names no [[ami]] PBX: {callback_cfg.pbx!r}")
    for reader in readers:
        reader.report_unknown()

    problems += check_missed_call(policy_cfg, sms_cfg.missed_call_templates,
                                  sms_cfg.default_language, web_cfg.hotline,
                                  render=render_templates)
    if render_templates:
        problems += check_templates(sms_cfg.templates, sms_cfg.default_language,
                                    public_url=web_cfg.public_url)
        problems += check_reply_texts(sms_cfg.carrier, sms_cfg.default_language)
    if problems:
        raise ConfigError(str(path), problems)
    return Config(
        path=path, pbxs=pbxs, smpp=smpp_cfg, web=web_cfg, database_path=database.path,
        agents_file=agents_file, policy=policy_cfg, sms=sms_cfg, log_level=level,
        retention_days=retention_days, stop_timeout=stop_timeout,
        database=database, callback=callback_cfg,
    )


def load_config(path: str | Path, *, render_templates: bool = False) -> Config:
    """Read and validate the TOML file at `path`; any unusable file is one ConfigError."""
    path = Path(path)
    return parse_config(read_toml(path), path, render_templates=render_templates)


def smpp_share(config: Config) -> SmppConfig:
    """[smpp] as this daemon uses it: the SMSC account's rate cap is the account's, so each
    of [database] daemons binds with its share of max_per_second."""
    daemons = config.db.daemons
    if daemons <= 1:
        return config.smpp
    return replace(config.smpp, max_per_second=config.smpp.max_per_second / daemons)
