"""Pages gzip-compressed for browsers that ask, with the Vary header that says what varies."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from functools import lru_cache

from aiohttp import web
from aiohttp.web_response import ContentCoding

# A page differs by both: the labels follow Accept-Language, the bytes Accept-Encoding.
VARY = "Accept-Encoding, Accept-Language"
# Below this a gzip header and trailer cost more than they save (a 429 page is ~1.5 KB).
MIN_SIZE = 512


@lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """True when the Accept-Encoding header admits gzip (RFC 9110 §12.5.3).

    `gzip;q=0` refuses it; `*` admits it unless gzip itself is refused; `x-gzip` is gzip.
    """
    star = False
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip()
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding in ("gzip", "x-gzip"):
            return weight > 0
        if coding == "*":
            star = weight > 0
    return star


def gzipped(body: bytes) -> bytes:
    """`body` gzip-compressed, the same bytes every time (no timestamp in the header)."""
    return gzip.compress(body, compresslevel=9, mtime=0)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def negotiate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTML pages rendered for one request (a 404, a thank-you card) are compressed here
    when the browser accepts gzip; the card itself arrives compressed already (cached)."""
    response = await handler(request)
    headers = response.headers
    if ("Content-Encoding" in headers or not isinstance(response, web.Response)
            or response.content_type != "text/html"):
        return response
    headers["Vary"] = VARY
    body = response.body
    if (isinstance(body, bytes) and len(body) >= MIN_SIZE
            and accepts_gzip(request.headers.get("Accept-Encoding", ""))):
        response.enable_compression(ContentCoding.gzip)
    return response
