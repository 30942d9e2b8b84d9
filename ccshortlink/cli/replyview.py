"""How `trace` and `stats` show customers' replies: what was typed, taken for, answered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KINDS = {"opt_out": "opt-out", "opt_in": "opt-in", "help": "help", "other": "other text"}


def describe_reply(facts: Mapping[str, Any]) -> str:
    """`“Td。” → opt-out, answered (SMS #3)`: the text as typed, what it was taken for."""
    kind = KINDS.get(facts["reply_kind"], facts["reply_kind"])
    if facts["sms_id"] is not None:
        answer = f", answered (SMS #{facts['sms_id']})"
    elif facts["not_answered"]:
        answer = f", not answered: {facts['not_answered']}"
    else:
        answer = ""
    text = facts["text"] if facts["text"] else "(text removed by retention)"
    return f"{facts['customer_number']} “{text}” → {kind}{answer}"


def replies_line(counts: Mapping[str, int]) -> str:
    """One line under a period's table: `Replies: 3 (1 opt-out, ...), 2 answered`."""
    total = sum(counts.get(kind, 0) for kind in KINDS)
    each = ", ".join(f"{counts.get(kind, 0)} {label}" for kind, label in KINDS.items())
    return f"Replies: {total} ({each}), {counts.get('answered', 0)} answered"
