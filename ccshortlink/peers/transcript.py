"""Recorded AMI transcripts: split into frames, rewrite into fresh calls, interleave (no I/O)."""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from functools import lru_cache
from pathlib import Path

DEFAULT_BANNER = b"Asterisk Call Manager/9.0.0\r\n"
TERMINATOR = b"\r\n\r\n"
# Who the recorded calls in tests/fixtures are between.
FIXTURE_CUSTOMER = "+8613800138000"
FIXTURE_AGENT = "1001"

_ID_HEADER = re.compile(r"(?i).*(uniqueid|linkedid)")
_ASTERISK_ID = re.compile(r"\d+\.\d+")
# tech/resource-XXXXXXXX, optionally followed by ;1/;2 for the halves of a Local channel
_CHANNEL = re.compile(r"(?P<name>[A-Za-z][\w]*/[^\s,;|]+?)-(?P<suffix>[0-9a-f]{8})(?![0-9A-Za-z])")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Epoch part of rewritten ids: later than any recording, and distinct per call index.
_ID_EPOCH = 1_800_000_000


def split_transcript(raw: bytes) -> tuple[bytes, list[bytes]]:
    """The banner line (with its CRLF) and the frames after it, minus login reply and Goodbye."""
    banner, sep, rest = raw.partition(b"\r\n")
    if not sep or not banner.startswith(b"Asterisk Call Manager/"):
        raise ValueError("not an AMI transcript: no Asterisk Call Manager banner")
    pieces = rest.split(TERMINATOR)
    if pieces[-1].strip():
        raise ValueError("transcript ends in the middle of a frame")
    frames = [piece + TERMINATOR for piece in pieces[:-1]]
    if frames and frames[0].startswith(b"Response:"):
        frames.pop(0)  # the recorded session's own login
    if frames and frames[-1].startswith(b"Response: Goodbye"):
        frames.pop()
    return banner + sep, frames


def read_transcript(path: str | Path) -> tuple[bytes, list[bytes]]:
    """split_transcript() of a transcript file."""
    return split_transcript(Path(path).read_bytes())


def event_name(frame: bytes) -> str | None:
    """The Event header of a frame, or None for a Response."""
    for line in frame.split(b"\r\n"):
        if line.startswith(b"Event: "):
            return line[7:].decode("utf-8", "replace")
    return None


@lru_cache(maxsize=4096)
def _is_id_header(name: str) -> bool:
    # A transcript has a few dozen distinct header names, seen thousands of times each.
    return _ID_HEADER.fullmatch(name) is not None


def rewrite_call(frames: list[bytes], *, index: int, customer_number: str | None = None,
                 agent_extension: str | None = None, original_customer: str = FIXTURE_CUSTOMER,
                 original_agent: str = FIXTURE_AGENT) -> list[bytes]:
    """A new, distinct call made from a recorded one: fresh ids, channels and bridges for `index`.

    The same `index` always gives the same bytes; different indexes never share an id.
    """
    agent_token = re.compile(rf"(?<![0-9A-Za-z.]){re.escape(original_agent)}(?![0-9A-Za-z])")
    ids: dict[str, str] = {}
    suffixes: dict[str, str] = {}

    def new_suffix(match: re.Match[str]) -> str:
        old = match.group("suffix")
        # high bit set: never equal to a recorded suffix (Asterisk counts up from 0)
        fresh = f"{(0x80000000 + index * 0x100 + len(suffixes)) % 0x100000000:08x}"
        return f"{match.group('name')}-{suffixes.setdefault(old, fresh)}"

    def new_uuid(match: re.Match[str]) -> str:
        digest = hashlib.sha256(f"{index}:{match.group(0)}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    # Most values hold no agent, no channel and no UUID: the substring tests below skip the
    # regexes for them (each regex needs that substring to match), which is most of the cost.
    rewritten = []
    for frame in frames:
        # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged
        lines = frame.decode("utf-8", "surrogateescape").split("\r\n")
        out = []
        for line in lines:
            name, sep, value = line.partition(": ")
            if not sep:
                out.append(line)
                continue
            if agent_extension is not None and original_agent in value:
                value = agent_token.sub(agent_extension, value)
            if customer_number is not None:
                value = value.replace(original_customer, customer_number)
            if "-" in value and "/" in value:
                value = _CHANNEL.sub(new_suffix, value)
            if _is_id_header(name) and _ASTERISK_ID.fullmatch(value):
                value = ids.setdefault(value, f"{_ID_EPOCH + index}.{len(ids)}")
            if "-" in value:
                value = _UUID.sub(new_uuid, value)
            out.append(f"{name}{sep}{value}")
        rewritten.append("\r\n".join(out).encode("utf-8", "surrogateescape"))
    return rewritten


def interleave(calls: list[list[bytes]], seed: int) -> list[bytes]:
    """One stream from several calls, each call's frames kept in order; same seed, same stream."""
    rng = random.Random(seed)
    count = len(calls)
    positions = [0] * count
    remaining = [len(call) for call in calls]
    # A Fenwick tree over `remaining` picks a call in O(log n) where random.choices() rebuilds
    # the cumulative weights on every pick. It draws the same rng.random() and lands on the
    # same call as choices(range(count), weights=remaining), so streams are unchanged.
    tree = [0] * (count + 1)
    for i, left in enumerate(remaining, 1):
        tree[i] += left
        parent = i + (i & -i)
        if parent <= count:
            tree[parent] += tree[i]
    top = 1 << max(count.bit_length() - 1, 0)
    left_in_all = sum(remaining)
    stream: list[bytes] = []
    while left_in_all:
        # weighting by what is left makes every interleaving equally likely
        point = rng.random() * (left_in_all + 0.0)
        which, below, step = 0, 0, top
        while step:  # the first call whose cumulative weight exceeds `point`
            if which + step <= count and below + tree[which + step] <= point:
                which += step
                below += tree[which]
            step >>= 1
        which = min(which, count - 1)
        stream.append(calls[which][positions[which]])
        positions[which] += 1
        remaining[which] -= 1
        left_in_all -= 1
        i = which + 1
        while i <= count:
            tree[i] -= 1
            i += i & -i
    return stream
