"""The [policy] section: who gets a card and when."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import phonenumbers

from ccshortlink.config.cardrules import read_card_rules
from ccshortlink.config.reader import DAY, HOUR, Reader
from ccshortlink.core.policy import PolicyConfig


def read_policy(policy: Reader) -> PolicyConfig:
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
        **read_card_rules(policy),
    )
    if (policy_cfg.quiet_start is None) != (policy_cfg.quiet_end is None):
        problems.append("[policy] quiet_start and quiet_end must be given together")
    try:
        ZoneInfo(policy_cfg.timezone)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        problems.append(f"[policy] timezone is not a known IANA zone: {policy_cfg.timezone!r}")
    return policy_cfg
