"""Who gets an SMS and when."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from ccshortlink.core.policy import (
    CustomerNumber,
    NumberRejected,
    PolicyConfig,
    SendFacts,
    decide,
    normalise_number,
    quiet_until,
)

POLICY = PolicyConfig(min_talk_seconds=10, quiet_start=time(21), quiet_end=time(8))
CUSTOMER = CustomerNumber("+8613800138000", "CN", "Asia/Shanghai")
NO_HISTORY = SendFacts(opted_out=False, last_pair_sms_at=None, sms_since_day_start=0)


def at(hour: int, minute: int = 0, zone: str = "Asia/Shanghai") -> float:
    return datetime(2026, 11, 24, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()


@pytest.mark.parametrize("raw", ["+8613800138000", "13800138000", "8613800138000",
                                 "008613800138000", " +86 138-0013-8000 "])
def test_chinese_mobile_forms_normalise_to_e164(raw: str) -> None:
    assert normalise_number(raw, POLICY) == CUSTOMER


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "anonymous"), ("<unknown>", "anonymous"), ("Anonymous", "anonymous"),
    ("1001", "internal"), ("*55", "internal"), ("02088880000", "not a mobile"),
    ("12345678901234", "not a valid"), ("abc", "not a number"), ("sip:alice", "not a number"),
])
def test_numbers_that_get_no_sms_say_why(raw: str, reason: str) -> None:
    result = normalise_number(raw, POLICY)
    assert isinstance(result, NumberRejected)
    assert reason in result.reason


def test_foreign_mobile_keeps_its_country_and_zone() -> None:
    result = normalise_number("+14155550123", POLICY)
    assert isinstance(result, CustomerNumber)
    assert (result.region, result.time_zone) == ("US", "America/Los_Angeles")


def test_landlines_allowed_when_mobile_only_is_off() -> None:
    policy = PolicyConfig(mobile_only=False)
    assert isinstance(normalise_number("02088880000", policy), CustomerNumber)


def decide_at(now: float, **kwargs: object) -> object:
    args: dict[str, object] = dict(trigger="hangup", talk_seconds=30.0, card_already_sent=False,
                                   facts=NO_HISTORY, customer=CUSTOMER, policy=POLICY, now=now)
    args.update(kwargs)
    return decide(**args)  # type: ignore[arg-type]


def test_rules_in_order() -> None:
    noon = at(12)
    assert decide_at(noon).outcome == "send"
    short = decide_at(noon, talk_seconds=3.0)
    assert short.outcome == "skip" and "below minimum" in short.reason
    # the feature code is an explicit request: talk time does not apply
    assert decide_at(noon, trigger="feature_code", talk_seconds=None).outcome == "send"
    assert "already sent" in decide_at(noon, card_already_sent=True).reason
    opted = SendFacts(opted_out=True, last_pair_sms_at=None, sms_since_day_start=0)
    assert "opted out" in decide_at(noon, facts=opted).reason
    recent = SendFacts(opted_out=False, last_pair_sms_at=noon - 3600, sms_since_day_start=1)
    assert "within 24h" in decide_at(noon, facts=recent).reason
    capped = SendFacts(opted_out=False, last_pair_sms_at=None, sms_since_day_start=3)
    assert "daily cap" in decide_at(noon, facts=capped).reason


def test_quiet_hours_defer_to_the_morning_in_the_customers_zone() -> None:
    late = decide_at(at(23, 30))
    assert late.outcome == "defer"
    assert late.not_before == at(8) + 86400
    assert "deferred to 08:00" in late.reason
    early = decide_at(at(6))
    assert early.outcome == "defer" and early.not_before == at(8)
    # 23:30 in Shanghai is 07:30 in Los Angeles: quiet there too, until 08:00 LA time
    us = CustomerNumber("+14155550123", "US", "America/Los_Angeles")
    deferred = decide_at(at(23, 30), customer=us)
    assert deferred.not_before == at(8, zone="America/Los_Angeles")


def test_no_quiet_hours_configured_means_never_quiet() -> None:
    assert quiet_until(at(3), "Asia/Shanghai", PolicyConfig()) is None
