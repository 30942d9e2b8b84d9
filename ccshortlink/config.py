"""Read ccshortlink.toml into frozen dataclasses, reporting every problem at once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from ccshortlink.problems import ProblemsError


class ConfigError(ProblemsError):
    """The configuration is unusable; `problems` lists every reason."""


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
class PolicyConfig:
    min_talk_seconds: float = 5.0
    default_region: str = "CN"
    mobile_only: bool = True
    link_ttl_days: float = 30.0
    resend_window_hours: float = 24.0
    daily_cap_per_number: int = 3
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str = "Asia/Shanghai"
    card_on_transfer: str = "last"  # "last" agent only, or "all" agents bridged with the customer
    call_timeout_hours: float = 12.0  # evict calls whose last Hangup never arrives
    feature_code_window_minutes: float = 30.0
    max_live_channels: int = 20000  # the tracker evicts the oldest channel beyond this


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


DEFAULT_TEMPLATES = {
    "zh-CN": "您好，刚才为您服务的是{{ agent.name }}（工号{{ agent.id }}）。"
    "下次可直接联系TA：{{ url }} 回TD退订",
    "en": "Thanks for calling. You spoke with {{ agent.name }} (ID {{ agent.id }}). "
    "Reach them again: {{ url }} Reply STOP to opt out",
}


class _Reader:
    """Pulls typed values out of one TOML table, collecting problems instead of raising."""

    def __init__(self, data: dict[str, Any], section: str, problems: list[str]) -> None:
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            problems.append(f"[{section}] must be a table")
            raw = {}
        self.table: dict[str, Any] = raw
        self.section = section
        self.problems = problems

    def _get(self, key: str, kinds: tuple[type, ...], default: Any, required: bool) -> Any:
        if key not in self.table:
            if required:
                self.problems.append(f"[{self.section}] {key} is required")
            return default
        value = self.table[key]
        # bool is an int subclass: never accept it where a number is wanted
        if isinstance(value, bool) and bool not in kinds:
            value = None
        if not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.problems.append(f"[{self.section}] {key} must be {names}, got {self.table[key]!r}")
            return default
        return value

    def text(self, key: str, default: str = "", *, required: bool = False) -> str:
        value = self._get(key, (str,), default, required)
        if required and isinstance(value, str) and not value.strip() and key in self.table:
            self.problems.append(f"[{self.section}] {key} must not be empty")
        return value

    def number(self, key: str, default: float = 0.0, *, minimum: float | None = None) -> float:
        value = float(self._get(key, (int, float), default, False))
        if minimum is not None and value < minimum:
            self.problems.append(f"[{self.section}] {key} must be >= {minimum:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int = 0, *, minimum: int | None = None,
                maximum: int | None = None, required: bool = False) -> int:
        value = int(self._get(key, (int,), default, required))
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            self.problems.append(f"[{self.section}] {key} must be in {minimum}..{maximum}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._get(key, (bool,), default, False))

    def words(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key, (list,), list(default), False)
        if not all(isinstance(v, str) for v in value):
            self.problems.append(f"[{self.section}] {key} must be a list of strings")
            return default
        return tuple(value)

    def clock(self, key: str) -> time | None:
        value = self.text(key)
        if not value:
            return None
        try:
            return time.fromisoformat(value)
        except ValueError:
            self.problems.append(f"[{self.section}] {key} must be HH:MM, got {value!r}")
            return None


def _listen(value: str, problems: list[str]) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        problems.append(f"[web] listen must be HOST:PORT, got {value!r}")
        return "127.0.0.1", 8080
    return host.strip("[]"), int(port)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Build a Config from parsed TOML; raise ConfigError listing every problem."""
    problems: list[str] = []
    base = path.parent.resolve()
    for section in ("ami", "smpp", "web", "database", "agents"):
        if section not in data:
            problems.append(f"[{section}] section is missing")

    ami = _Reader(data, "ami", problems)
    ami_cfg = AmiConfig(
        host=ami.text("host", "127.0.0.1", required=True),
        port=ami.integer("port", 5038, minimum=1, maximum=65535, required=True),
        username=ami.text("username", required=True),
        secret=ami.text("secret", required=True),
        ping_interval=ami.number("ping_interval", 10.0, minimum=0.05),
        ping_timeout=ami.number("ping_timeout", 5.0, minimum=0.05),
        reconnect_max=ami.number("reconnect_max", 30.0, minimum=0.1),
        events=ami.text("events", "call,agent,user,cdr"),
    )

    smpp = _Reader(data, "smpp", problems)
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
        max_per_second=smpp.number("max_per_second", 100.0, minimum=0.1),
        enquire_link_interval=smpp.number("enquire_link_interval", 30.0, minimum=0.05),
        response_timeout=smpp.number("response_timeout", 10.0, minimum=0.05),
        reconnect_max=smpp.number("reconnect_max", 60.0, minimum=0.1),
        registered_delivery=smpp.flag("registered_delivery", True),
    )

    web = _Reader(data, "web", problems)
    host, port = _listen(web.text("listen", "127.0.0.1:8080"), problems)
    public_url = web.text("public_url", required=True).rstrip("/")
    parts = urlsplit(public_url)
    if public_url and (parts.scheme not in ("http", "https") or not parts.netloc):
        problems.append(f"[web] public_url must be an http(s) URL, got {public_url!r}")
    web_cfg = WebConfig(
        host=host, port=port, public_url=public_url,
        hotline=web.text("hotline", ""), api_token=web.text("api_token", ""),
        company=web.text("company", ""),
        trusted_proxies=web.words("trusted_proxies", ()),
    )

    database = _Reader(data, "database", problems)
    db_path = _resolve(base, database.text("path", "ccshortlink.db", required=True))

    agents = _Reader(data, "agents", problems)
    agents_file = _resolve(base, agents.text("file", "agents.yaml", required=True))

    policy = _Reader(data, "policy", problems)
    region = policy.text("default_region", "CN").upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(f"[policy] default_region must be an ISO region such as CN, got {region!r}")
    transfer = policy.text("card_on_transfer", "last")
    if transfer not in ("last", "all"):
        problems.append(f"[policy] card_on_transfer must be 'last' or 'all', got {transfer!r}")
    policy_cfg = PolicyConfig(
        min_talk_seconds=policy.number("min_talk_seconds", 5.0, minimum=0),
        default_region=region,
        mobile_only=policy.flag("mobile_only", True),
        link_ttl_days=policy.number("link_ttl_days", 30.0, minimum=0.001),
        resend_window_hours=policy.number("resend_window_hours", 24.0, minimum=0),
        daily_cap_per_number=policy.integer("daily_cap_per_number", 3, minimum=1, maximum=1000),
        quiet_start=policy.clock("quiet_start"),
        quiet_end=policy.clock("quiet_end"),
        timezone=policy.text("timezone", "Asia/Shanghai"),
        card_on_transfer=transfer,
        call_timeout_hours=policy.number("call_timeout_hours", 12.0, minimum=0.01),
        feature_code_window_minutes=policy.number("feature_code_window_minutes", 30.0, minimum=0),
        max_live_channels=policy.integer("max_live_channels", 20000, minimum=10,
                                         maximum=10_000_000),
    )
    if (policy_cfg.quiet_start is None) != (policy_cfg.quiet_end is None):
        problems.append("[policy] quiet_start and quiet_end must be given together")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(policy_cfg.timezone)
    except Exception:
        problems.append(f"[policy] timezone is not a known IANA zone: {policy_cfg.timezone!r}")

    sms = _Reader(data, "sms", problems)
    templates = dict(DEFAULT_TEMPLATES)
    raw_templates = sms.table.get("templates", {})
    if not isinstance(raw_templates, dict) or not all(
        isinstance(v, str) for v in raw_templates.values()
    ):
        problems.append("[sms] templates must be a table of language = \"text\"")
    else:
        templates.update(raw_templates)
    if "template" in sms.table:  # a single template overrides the default language's one
        templates[sms.text("default_language", "zh-CN")] = sms.text("template")
    for language, text in templates.items():
        if "{{ url }}" not in text and "{{url}}" not in text:
            problems.append(f"[sms] template for {language!r} must contain {{{{ url }}}}")
    sms_cfg = SmsConfig(
        templates=templates,
        default_language=sms.text("default_language", "zh-CN"),
        max_attempts=sms.integer("max_attempts", 10, minimum=1, maximum=1000),
        expire_hours=sms.number("expire_hours", 24.0, minimum=0.01),
        opt_out_words=sms.words("opt_out_words", SmsConfig.opt_out_words),
        opt_in_words=sms.words("opt_in_words", SmsConfig.opt_in_words),
    )
    if sms_cfg.default_language not in templates:
        problems.append(f"[sms] no template for default_language {sms_cfg.default_language!r}")

    log = _Reader(data, "log", problems)
    level = log.text("level", "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        problems.append(f"[log] level must be debug, info, warning or error, got {level!r}")
    retention = _Reader(data, "retention", problems)
    retention_days = retention.number("days", 365.0, minimum=1)

    if problems:
        raise ConfigError(str(path), problems)
    return Config(
        path=path, ami=ami_cfg, smpp=smpp_cfg, web=web_cfg, database_path=db_path,
        agents_file=agents_file, policy=policy_cfg, sms=sms_cfg, log_level=level,
        retention_days=retention_days,
    )


def load_config(path: str | Path) -> Config:
    """Read and validate the TOML file at `path`."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_config(data, path)
