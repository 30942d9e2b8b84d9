"""Which calls get a card at hangup: the agent's auto_send, the call's direction and queue; pure.

These rules judge the cards the daemon sends by itself when a call ends. A card the agent asks
for (`*55`), or that the API or the CLI asks for, is someone's explicit choice: it passes them.
Each rule that holds a card back says so in the words of the config, for `trace`.
"""

from __future__ import annotations

from collections.abc import Callable

from ccshortlink.core.agents import Agent
from ccshortlink.core.callrecords import clean_number
from ccshortlink.core.callroute import CallRoute, Direction
from ccshortlink.core.policy import INTERNAL_MAX_DIGITS, PolicyConfig


def is_extension_number(number: str, is_agent_extension: Callable[[str], bool]) -> bool:
    """An agent's extension, or a number of extension length: a desk, not a customer."""
    text = clean_number(number)
    if is_agent_extension(text):
        return True
    digits = "".join(ch for ch in text if ch.isdigit())
    return bool(digits) and not text.startswith("+") and len(digits) <= INTERNAL_MAX_DIGITS


def direction_of(route: CallRoute | None, other_party: str,
                 is_agent_extension: Callable[[str], bool]) -> Direction | None:
    """The call's direction, seen from the agent; None when its start was not seen."""
    if is_extension_number(other_party, is_agent_extension):
        return Direction.INTERNAL
    if route is None:
        return None
    return Direction.OUTBOUND if route.started_by_agent else Direction.INBOUND


def hangup_rule_skip(*, agent: Agent, route: CallRoute | None, other_party: str,
                     policy: PolicyConfig,
                     is_agent_extension: Callable[[str], bool]) -> str | None:
    """The rule that keeps an ended call from a card, in the config's words; None: none does."""
    if not agent.auto_send:
        return f"agent {agent.id} has auto_send: false (the agent sends with *55)"
    direction = direction_of(route, other_party, is_agent_extension)
    if direction is not None and direction not in policy.directions:
        return f"direction {direction} not in [policy] directions"
    if route is None or direction != Direction.INBOUND:
        # Only a call that came in can have waited in a queue; an agent's own call out (or a
        # call whose start was not seen) is judged by the direction rule alone.
        return None
    return queue_rule_skip(route.queue, policy)


def queue_rule_skip(queue: str, policy: PolicyConfig) -> str | None:
    """`queues_exclude` first, then `queues_include` (which a call through no queue fails)."""
    if queue and queue in policy.queues_exclude:
        return f"queue {queue} in [policy] queues_exclude"
    if policy.queues_include and queue not in policy.queues_include:
        if not queue:
            return "inbound call through no queue, and [policy] queues_include is set"
        return f"queue {queue} not in [policy] queues_include"
    return None
