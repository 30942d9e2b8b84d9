"""The agent's photo and greeting: which files a card may serve, at URLs that carry a version."""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp", ".gif": "image/gif", ".svg": "image/svg+xml"}
AUDIO_TYPES = {".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac",
               ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
               ".wav": "audio/wav", ".webm": "audio/webm"}
# The file's URL carries its version, so phones may keep it as long as they like.
_IMMUTABLE = "private, max-age=31536000, immutable"


def file_url(code: str, path: Path | None, route: str) -> str | None:
    """`{code}/{route}?v=<mtime><size>`, or None when the agent has no such file (any more)."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:  # removed since the agents file was loaded: fall back gracefully
        return None
    return f"{code}/{route}?v={stat.st_mtime_ns // 1_000_000:x}{stat.st_size:x}"


def agent_file(path: Path | None, types: dict[str, str]) -> web.StreamResponse:
    """One of the agent's files, if it has one of a type the page may serve."""
    content_type = types.get(path.suffix.lower()) if path is not None else None
    if path is None or content_type is None or not path.is_file():
        raise web.HTTPNotFound()
    # FileResponse streams from a thread and answers Range requests (iOS audio needs them).
    return web.FileResponse(path, headers={"Content-Type": content_type,
                                           "Cache-Control": _IMMUTABLE})
