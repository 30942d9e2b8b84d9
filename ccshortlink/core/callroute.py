"""How a call ran, for the card rules: who started it, its queues, whether it was abandoned."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Which way a call went; the words of `[policy] directions` (logged and traced as is)."""

    INBOUND = "inbound"  # the customer called in (a direct line or a queue)
    OUTBOUND = "outbound"  # an agent called the customer (dialled, or a click-to-dial Originate)
    INTERNAL = "internal"  # the other end is an extension, not a customer's number


@dataclass(frozen=True)
class CallRoute:
    """What the AMI events of one call (one Linkedid) said about its way, from its first channel.

    Known only for calls whose first channel the tracker saw start: a call that began before
    ccshortlink was watching has none, and the direction and queue rules leave it alone.
    """

    started_by_agent: bool  # its first channel was an agent's (or a Local channel to one)
    queues: tuple[str, ...] = ()  # every queue the caller joined, in order
    abandoned: bool = False  # the caller hung up while waiting in a queue (QueueCallerAbandon)

    @property
    def queue(self) -> str:
        """The queue that judged the call: the last one it joined ('' for none)."""
        return self.queues[-1] if self.queues else ""
