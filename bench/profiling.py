"""Reading profiles: py-spy's collapsed stacks summarised into where the time goes."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

# Leaf frames that mean "waiting", not working: epoll on the loop, the SQLite worker's queue,
# the SMPP thread's select (py-spy reports C-level waits at the calling Python line).
_IDLE = re.compile(r"EpollSelector\.select|_connection_worker_thread \(aiosqlite/core\.py:59\)"
                   r"|SmscConnection\.wait \(|SmppLink\._pause \(|Thread\.wait|Condition\.wait")
# Buckets for the inclusive view: the first frame matching one of these, from the leaf up.
BUCKETS = (
    ("SQLite (aiosqlite thread)", re.compile(r"aiosqlite/core\.py")),
    ("SMPP thread (smpplib)", re.compile(r"ccshortlink/smpp/|smpplib/")),
    ("structlog (rendering, masking, writing)", re.compile(r"structlog/|ccshortlink/ops/logs\.py")),
    ("AMI framing (AmiProtocol)", re.compile(r"ccshortlink/ami/")),
    ("call tracking (CallTracker)", re.compile(r"ccshortlink/core/calls\.py")),
    ("policy + numbers (phonenumbers)", re.compile(r"phonenumbers/|ccshortlink/core/policy\.py")),
    ("SMS text + encoding (jinja2, sms.py)",
     re.compile(r"jinja2/|ccshortlink/core/(links|sms)\.py")),
    ("store awaits (loop side)", re.compile(r"ccshortlink/store/")),
    ("outbox (loop side)", re.compile(r"ccshortlink/app/outbox\.py")),
    ("asyncio machinery", re.compile(r"asyncio/")),
)


def _frames(stack: str) -> list[str]:
    return stack.split(";")


def summarise_collapsed(path: Path, top: int = 12) -> list[str]:
    """Markdown lines: busy share per thread, per bucket, and the hottest leaf functions."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [f"(no profile at {path}: py-spy did not run)"]
    threads: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    busy = 0
    for raw in text.splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        leaf = frames[-1]
        if _IDLE.search(leaf):
            continue
        busy += count
        thread = re.sub(r"^thread \(\w+\): ", "", frames[0])
        threads[thread] += count
        leaves[re.sub(r":\d+\)$", ")", leaf)] += count
        for name, pattern in BUCKETS:
            if any(pattern.search(frame) for frame in frames):
                buckets[name] += count
                break
        else:
            buckets["other"] += count
    if not busy:
        return [f"(profile {path} holds no busy samples)"]
    out = [f"py-spy, busy samples only ({busy}), from {path.name}:", "",
           "| thread | share of busy samples |", "|---|---|"]
    out += [f"| {name} | {n * 100 / busy:.0f}% |" for name, n in threads.most_common()]
    out += ["", "| where (first match from the leaf's stack) | share |", "|---|---|"]
    out += [f"| {name} | {n * 100 / busy:.0f}% |" for name, n in buckets.most_common()]
    out += ["", "| hottest leaf functions | share |", "|---|---|"]
    out += [f"| `{name}` | {n * 100 / busy:.1f}% |" for name, n in leaves.most_common(top)]
    return out
