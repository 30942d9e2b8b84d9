"""Read ccshortlink.toml into frozen dataclasses, reporting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers

from ccshortlink.config.file import ConfigError, read_toml
from ccshortlink.config.reader import Reader, report_unknown_sections
from ccshortlink.config.rules import check_networks, check_smpp_lengths, parse_listen
from ccshortlink.core.links import check_templates
from ccshortlink.core.policy import PolicyConfig

__all__ = ["DEFAULT_TEMPLATES", "Config", "ConfigError", "load_config", "parse_config"]


@dataclass(frozen=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_max: float = 30.0
    # Event classes asked for at login: enough for calls, queues and UserEvent.
    events: str = "call,agent,user,cdr"

    def __repr__(self) -> str:  # never let the secret reach a log line
        return f"AmiConfig(host={self.host!r}, port={self.port}, username={self.username!r})"


@dataclass(frozen=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    source_addr: str
    source_addr_ton: int = 5  # alphanumeric sender unless configured
    source_addr_npi: int = 0
    system_type: str = ""
    window: int = 10
    max_per_second: float = 100.0
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_max: float = 60.0
    registered_delivery: bool = True

    def __repr__(self) -> str:
        return f"SmppConfig(host={self.host!r}, port={self.port}, system_id={self.system_id!r})"


@dataclass(frozen=True)
class WebConfig:
    host: str
    port: int
    public_url: str
    hotline: str = ""
    api_token: str = ""
    company: str = ""
    # Peers (addresses or CIDR networks) whose X-Forwarded-For is believed; none by default.
    trusted_proxies: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"WebConfig(host={self.host!r}, port={self.port}, public_url={self.public_url!r})"


@dataclass(frozen=True)
class SmsConfig:
    templates: dict[str, str] = field(default_factory=dict)
    default_language: str = "zh-CN"
    max_attempts: int = 10
    expire_hours: float = 24.0
    opt_out_words: tuple[str, ...] = ("STOP", "TD", "T", "退订", "R", "UNSUBSCRIBE")
    opt_in_words: tuple[str, ...] = ("START", "订阅")


@dataclass(frozen=True)
class Config:
    path: Path
    ami: AmiConfig
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


DEFAULT_TEMPLATES = {
    # One UCS-2 part (67 of 70 characters) with a 3-character name, CS1001 and a 9-character
    # code on https://cs.example.com: a second part costs as much again for every call.
    "zh-CN": "刚才为您服务的是{{ agent.name }}（工号{{ agent.id }}），"
    "再次联系TA：{{ url }} 回TD退订",
    "en": "Thanks for calling. You spoke with {{ agent.name }} (ID {{ agent.id }}). "
    "Reach them again: {{ url }} Reply STOP to opt out",
}


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


HOUR, DAY = 3600.0, 86400.0
SECTIONS = ["ami", "smpp", "web", "database", "agents", "policy", "sms", "log", "retention",
            "daemon"]


def _ami(ami: Reader) -> AmiConfig:
    return AmiConfig(
        host=ami.text("host", "127.0.0.1", required=True),
        port=ami.integer("port", 5038, minimum=1, maximum=65535, required=True),
        username=ami.text("username", required=True),
        secret=ami.text("secret", required=True),
        ping_interval=ami.number("ping_interval", 10.0, minimum=0.05, maximum=HOUR),
        ping_timeout=ami.number("ping_timeout", 5.0, minimum=0.05, maximum=600),
        reconnect_max=ami.number("reconnect_max", 30.0, minimum=0.1, maximum=HOUR),
        events=ami.text("events", "call,agent,user,cdr", max_length=200),
    )


def _smpp(smpp: Reader) -> SmppConfig:
    smpp_cfg = SmppConfig(
        host=smpp.text("host", "127.0.0.1", required=True),
        port=smpp.integer("port", 2775, minimum=1, maximum=65535, required=True),
        system_id=smpp.text("system_id", required=True),
        password=smpp.text("password", required=True),
        source_addr=smpp.text("source_addr", required=True),
        source_addr_ton=smpp.integer("source_addr_ton", 5, minimum=0, maximum=6),
        source_addr_npi=smpp.integer("source_addr_npi", 0, minimum=0, maximum=18),
        system_type=smpp.text("system_type", ""),
        window=smpp.integer("window", 10, minimum=1, maximum=1000),
        max_per_second=smpp.number("max_per_second", 100.0, minimum=0.1, maximum=1_000_000),
        enquire_link_interval=smpp.number("enquire_link_interval", 30.0, minimum=0.05,
                                          maximum=HOUR),
        response_timeout=smpp.number("response_timeout", 10.0, minimum=0.05, maximum=600),
        reconnect_max=smpp.number("reconnect_max", 60.0, minimum=0.1, maximum=HOUR),
        registered_delivery=smpp.flag("registered_delivery", True),
    )
    check_smpp_lengths(smpp_cfg.__dict__, smpp.problems)
    return smpp_cfg


def _web(web: Reader) -> WebConfig:
    host, port = parse_listen(web.text("listen", "127.0.0.1:8080"), web.problems)
    public_url = web.text("public_url", required=True).rstrip("/")
    parts = urlsplit(public_url)
    if public_url and (parts.scheme not in ("http", "https") or not parts.netloc):
        web.problems.append(f"[web] public_url must be an http(s) URL, got {public_url!r}")
    web_cfg = WebConfig(
        host=host, port=port, public_url=public_url,
        hotline=web.text("hotline", ""), api_token=web.text("api_token", ""),
        company=web.text("company", ""),
        trusted_proxies=web.words("trusted_proxies", ()),
    )
    check_networks(web_cfg.trusted_proxies, web.problems)
    return web_cfg


def _policy(policy: Reader) -> PolicyConfig:
    problems = policy.problems
    region = policy.text("default_region", "CN").upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(f"[policy] default_region must be an ISO region such as CN, got {region!r}")
    transfer = policy.text("card_on_transfer", "last")
    if transfer not in ("last", "all"):
        problems.append(f"[policy] card_on_transfer must be 'last' or 'all', got {transfer!r}")
    policy_cfg = PolicyConfig(
        min_talk_seconds=policy.number("min_talk_seconds", 5.0, minimum=0, maximum=HOUR),
        default_region=region,
        mobile_only=policy.flag("mobile_only", True),
        link_ttl_days=policy.number("link_ttl_days", 30.0, minimum=0.001, maximum=3650),
        resend_window_hours=policy.number("resend_window_hours", 24.0, minimum=0,
                                          maximum=24 * 366),
        daily_cap_per_number=policy.integer("daily_cap_per_number", 3, minimum=1, maximum=1000),
        quiet_start=policy.clock("quiet_start"),
        quiet_end=policy.clock("quiet_end"),
        timezone=policy.text("timezone", "Asia/Shanghai"),
        card_on_transfer=transfer,
        call_timeout_hours=policy.number("call_timeout_hours", 12.0, minimum=0.01, maximum=720),
        feature_code_window_minutes=policy.number("feature_code_window_minutes", 30.0,
                                                  minimum=0, maximum=DAY / 60),
        max_live_channels=policy.integer("max_live_channels", 20000, minimum=10,
                                         maximum=10_000_000),
    )
    if (policy_cfg.quiet_start is None) != (policy_cfg.quiet_end is None):
        problems.append("[policy] quiet_start and quiet_end must be given together")
    try:
        ZoneInfo(policy_cfg.timezone)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        problems.append(f"[policy] timezone is not a known IANA zone: {policy_cfg.timezone!r}")
    return policy_cfg


def _sms(sms: Reader) -> SmsConfig:
    default_language = sms.text("default_language", "zh-CN")
    templates = dict(DEFAULT_TEMPLATES)
    raw_templates = sms.raw("templates", {})
    if not isinstance(raw_templates, dict) or not all(
        isinstance(v, str) for v in raw_templates.values()
    ):
        sms.problems.append("[sms] templates must be a table of language = \"text\"")
    else:
        templates.update(raw_templates)
    if "template" in sms.table:  # a single template overrides the default language's one
        templates[default_language] = sms.text("template")
    sms_cfg = SmsConfig(
        templates=templates,
        default_language=default_language,
        max_attempts=sms.integer("max_attempts", 10, minimum=1, maximum=1000),
        expire_hours=sms.number("expire_hours", 24.0, minimum=0.01, maximum=720),
        opt_out_words=sms.words("opt_out_words", SmsConfig.opt_out_words),
        opt_in_words=sms.words("opt_in_words", SmsConfig.opt_in_words),
    )
    if sms_cfg.default_language not in templates:
        sms.problems.append(
            f"[sms] no template for default_language {sms_cfg.default_language!r}")
    return sms_cfg


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

    ami_cfg = _ami(read("ami"))
    smpp_cfg = _smpp(read("smpp"))
    web_cfg = _web(read("web"))
    db_path = _resolve(base, read("database").text("path", "ccshortlink.db", required=True))
    agents_file = _resolve(base, read("agents").text("file", "agents.yaml", required=True))
    policy_cfg = _policy(read("policy"))
    sms_cfg = _sms(read("sms"))
    level = _log_level(read("log"))
    retention_days = read("retention").number("days", 365.0, minimum=1, maximum=36500)
    stop_timeout = read("daemon").number("stop_timeout", 25.0, minimum=1, maximum=600)
    for reader in readers:
        reader.report_unknown()

    if render_templates:
        problems += check_templates(sms_cfg.templates, sms_cfg.default_language,
                                    public_url=web_cfg.public_url)
    if problems:
        raise ConfigError(str(path), problems)
    return Config(
        path=path, ami=ami_cfg, smpp=smpp_cfg, web=web_cfg, database_path=db_path,
        agents_file=agents_file, policy=policy_cfg, sms=sms_cfg, log_level=level,
        retention_days=retention_days, stop_timeout=stop_timeout,
    )


def load_config(path: str | Path, *, render_templates: bool = False) -> Config:
    """Read and validate the TOML file at `path`; any unusable file is one ConfigError."""
    path = Path(path)
    return parse_config(read_toml(path), path, render_templates=render_templates)


