"""Request bodies read within bounds: a size cap and a nesting cap before any JSON parsing."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

MAX_API_BODY = 16 * 1024  # a send request is under 200 bytes; nothing sane needs more
MAX_DEPTH = 32  # json.loads recurses per level: a deep body must never reach it


class BodyProblem(Exception):
    """Why a body was refused, and the HTTP status that says so."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_capped(request: web.Request, cap: int = MAX_API_BODY) -> bytes:
    """The whole body, or BodyProblem(413) as soon as it is known to exceed `cap` octets."""
    if request.content_length is not None and request.content_length > cap:
        raise BodyProblem(413, f"body larger than {cap} bytes")
    body = bytearray()
    while chunk := await request.content.read(cap + 1 - len(body)):
        body += chunk
        if len(body) > cap:  # a chunked body with no Content-Length
            raise BodyProblem(413, f"body larger than {cap} bytes")
    return bytes(body)


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in JSON `text` (strings skipped); stops past `limit`."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(body: bytes, limit: int = MAX_DEPTH) -> Any:
    """The JSON value in `body`, or BodyProblem(400) saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyProblem(400, "body must be UTF-8 JSON") from None
    if nesting_depth(text, limit) > limit:
        raise BodyProblem(400, f"JSON nested deeper than {limit} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BodyProblem(400, "body must be JSON") from None
