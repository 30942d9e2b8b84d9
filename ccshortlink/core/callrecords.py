"""What the call tracker concludes, and how it reads channel names and numbers; pure."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ccshortlink.core.callroute import CallRoute
from ccshortlink.core.vocab import Trigger

Event = Mapping[str, str]
AgentLookup = Callable[[str, str], str | None]  # (channel name, caller id num) -> extension


@dataclass(frozen=True)
class CallEnded:
    """An agent and a customer were bridged and the customer's leg is gone."""

    linkedid: str
    agent_extension: str
    customer_number: str  # raw, as Asterisk gave it; policy normalises it
    talk_seconds: float
    trigger: Trigger = Trigger.HANGUP
    card_already_sent: bool = False
    decided_from: str = "events"  # "cdr" when the call began before ccshortlink was watching
    route: CallRoute | None = None  # its direction and queues, when its start was seen
    pbx: str = ""  # which PBX it happened on ([[ami]] name); stamped by the app, not the tracker


@dataclass(frozen=True)
class SendRequested:
    """An agent asked for their card to go to a customer (feature code)."""

    agent_extension: str
    customer_number: str  # "" when no customer could be found
    linkedid: str
    trigger: Trigger = Trigger.FEATURE_CODE
    reason: str = ""
    pbx: str = ""  # which PBX the agent asked on


@dataclass(frozen=True)
class CallClosed:
    """A call or channel let go of without a card decision, and why (logged, and traced)."""

    linkedid: str
    agent_extension: str  # "" when no agent was bridged with it
    customer_number: str  # "" when it was not a customer's channel
    talk_seconds: float | None
    reason: str
    trigger: Trigger  # pbx_restart | no_cdr | not_answered | evicted | call_timeout
    route: CallRoute | None = None  # its direction and queues, when its start was seen
    pbx: str = ""  # which PBX it happened on


Outcome = CallEnded | SendRequested | CallClosed

RESTART_REASON = "the PBX restarted before the call ended"
UNANSWERED_REASON = "no agent answered (rang out, abandoned or sent elsewhere)"


_UNKNOWN = {"", "<unknown>", "unknown", "anonymous", "<anonymous>", "restricted", "private"}


def clean_number(value: str) -> str:
    """'' for the placeholders Asterisk uses when there is no number."""
    value = value.strip()
    return "" if value.lower() in _UNKNOWN else value


def seconds_of(value: str) -> float:
    """A duration header as seconds; 0 for anything that is not a finite, positive number."""
    try:
        seconds = float(value or 0)
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def channel_endpoint(channel: str) -> tuple[str, str]:
    """('SIP', '1001') from 'SIP/1001-00000001'; ('Local', '1001') from 'Local/1001@q-00a;2'."""
    tech, _, rest = channel.partition("/")
    if tech.lower() == "local":
        return tech, rest.split("@", 1)[0]
    resource = rest.rsplit("-", 1)[0] if "-" in rest else rest
    return tech, resource


def default_agent_lookup(extensions: Callable[[str], bool],
                         channel_map: Mapping[str, str] | None = None) -> AgentLookup:
    """Build the function that says which channels belong to an agent."""
    mapping = dict(channel_map or {})

    def lookup(channel: str, caller_num: str) -> str | None:
        tech, resource = channel_endpoint(channel)
        prefix = f"{tech}/{resource}"
        if prefix in mapping:
            return mapping[prefix]
        if extensions(resource):
            return resource
        # PJSIP endpoints are often named freely ("agent-ann"); their CallerID is the extension.
        if tech.lower() != "local" and extensions(caller_num):
            return caller_num
        return None

    return lookup
