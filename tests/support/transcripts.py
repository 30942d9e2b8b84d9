"""Read the recorded AMI transcripts into event dicts, and rewrite them into new calls."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures"


def frames_of(text: str) -> list[dict[str, str]]:
    """Every 'Key: value' block of a transcript, in order (banner and responses included)."""
    frames = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        headers: dict[str, str] = {}
        for line in block.split("\n"):
            key, sep, value = line.partition(": ")
            if sep:
                headers[key] = value
            elif line.endswith(":"):
                headers[line[:-1]] = ""
        if headers:
            frames.append(headers)
    return frames


def events_of(name: str) -> list[dict[str, str]]:
    """The events of one fixture transcript."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return [f for f in frames_of(text) if "Event" in f]
