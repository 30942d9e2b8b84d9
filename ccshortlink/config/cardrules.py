"""The [policy] keys that say who gets a card at hangup: directions, queues, missed calls."""

from __future__ import annotations

from typing import Any

from ccshortlink.config.reader import Reader
from ccshortlink.core.callroute import Direction
from ccshortlink.core.policy import PolicyConfig

_DIRECTIONS = [d.value for d in Direction]


def read_card_rules(policy: Reader) -> dict[str, Any]:
    """PolicyConfig's rule fields, each checked; the problems go with the section's."""
    directions = policy.words("directions", PolicyConfig.directions)
    unknown = [d for d in directions if d not in _DIRECTIONS]
    if unknown:
        policy.problems.append(f"[policy] directions: {', '.join(map(repr, unknown))} is not a "
                               f"direction (any of {', '.join(_DIRECTIONS)})")
    include = _names(policy, "queues_include")
    exclude = _names(policy, "queues_exclude")
    both = sorted(set(include) & set(exclude))
    if both:
        policy.problems.append(f"[policy] queue {', '.join(both)} is in both queues_include "
                               f"and queues_exclude")
    return {"directions": tuple(dict.fromkeys(directions)), "queues_include": include,
            "queues_exclude": exclude,
            "missed_call_sms": policy.flag("missed_call_sms", False)}


def _names(policy: Reader, key: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in policy.words(key, ()))
    if any(not name for name in names):
        policy.problems.append(f"[policy] {key} has an empty queue name")
    return tuple(name for name in names if name)
