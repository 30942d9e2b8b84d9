"""The [callback] section: "call me back" from the card and the preferred-agent lookup."""

from __future__ import annotations

from dataclasses import dataclass

from ccshortlink.config.reader import Reader
from ccshortlink.core.hours import check_hours

# What {…} may name in customer_exten: the customer's number as the outbound route wants it.
NUMBER_FORMS = ("number", "digits", "national", "dial")


@dataclass(frozen=True)
class CallbackConfig:
    """Off unless `enabled = true`; every other key has a default that suits plain Asterisk
    with PJSIP (FreePBX: see the README)."""

    enabled: bool = False
    # How the agent's phone is rung: {extension} is the agent's extension on that PBX.
    agent_channel: str = "PJSIP/{extension}"
    # Where the customer's number is dialled once the agent answers (the outbound routes).
    customer_context: str = "from-internal"
    # The number as that context wants it: {dial} as dialled within its country, trunk
    # prefix included (UK 07911123456, Italy 0612345678, China 13800138000 / 01012345678);
    # {national} the national significant number, without a trunk prefix (7911123456,
    # 0612345678, 13800138000 / 1012345678); {digits} (8613800138000) or {number}
    # (+8613800138000); with any prefix, e.g. "9{dial}". "0{national}" suits only countries
    # whose trunk prefix is 0 and never part of the number (not Italy).
    customer_exten: str = "{national}"
    # The caller ID the customer sees (and the agent's phone shows); "" = [web] hotline.
    caller_id: str = ""
    # The PBX that places call-backs; "" = the PBX of the link's call (else the first).
    pbx: str = ""
    ring_agent_seconds: int = 30  # then the agent counts as not answering
    ring_customer_seconds: int = 45
    max_wait_minutes: int = 30  # a call-back waiting for a busy agent gives up after this
    per_link_per_day: int = 3  # call-backs one link may ask for in 24 h
    # Default working hours for agents without their own `hours` ("" = always), e.g.
    # "Mon-Fri 09:00-18:00; Sat 10:00-14:00", in [policy] timezone.
    hours: str = ""
    # GET /api/v1/preferred-agent without the bearer token from this box itself (Asterisk's
    # CURL() beside the daemon); false: the token always (Asterisk elsewhere, or to be sure).
    lookup_without_token: bool = True


def read_callback(callback: Reader) -> CallbackConfig:
    """[callback]; absent means off, and then nothing else changes."""
    cfg = CallbackConfig(
        enabled=callback.flag("enabled", False),
        agent_channel=callback.text("agent_channel", CallbackConfig.agent_channel),
        customer_context=callback.text("customer_context", CallbackConfig.customer_context),
        customer_exten=callback.text("customer_exten", CallbackConfig.customer_exten),
        caller_id=callback.text("caller_id", ""),
        pbx=callback.text("pbx", ""),
        ring_agent_seconds=callback.integer("ring_agent_seconds", 30, minimum=5, maximum=300),
        ring_customer_seconds=callback.integer("ring_customer_seconds", 45, minimum=5,
                                               maximum=300),
        max_wait_minutes=callback.integer("max_wait_minutes", 30, minimum=1, maximum=24 * 60),
        per_link_per_day=callback.integer("per_link_per_day", 3, minimum=1, maximum=100),
        hours=callback.text("hours", ""),
        lookup_without_token=callback.flag("lookup_without_token", True),
    )
    problems = callback.problems
    if "{extension}" not in cfg.agent_channel:
        problems.append("[callback] agent_channel must contain {extension}, got "
                        f"{cfg.agent_channel!r}")
    try:
        cfg.agent_channel.format(extension="1001")
    except (KeyError, IndexError, ValueError):
        problems.append("[callback] agent_channel may name only {extension}, got "
                        f"{cfg.agent_channel!r}")
    try:
        cfg.customer_exten.format(number="+1", digits="1", national="1", dial="1")
    except (KeyError, IndexError, ValueError):
        problems.append("[callback] customer_exten may name only {national}, {dial}, {digits}"
                        f" and {{number}}, got {cfg.customer_exten!r}")
    if not any("{" + form + "}" in cfg.customer_exten for form in NUMBER_FORMS):
        problems.append("[callback] customer_exten must contain {national}, {dial}, {digits}"
                        f" or {{number}}, got {cfg.customer_exten!r}")
    problem = check_hours(cfg.hours)
    if problem is not None:
        problems.append(f"[callback] hours: {problem}")
    return cfg
