"""Who is asking: anonymised client addresses, link-preview bots, per-client rate limits."""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

_Result = TypeVar("_Result")


def _memoised(func: Callable[..., _Result]) -> Callable[..., _Result]:
    """Remember a pure function's answers for inputs of ordinary length.

    A busy card sees the same few hundred addresses and browsers over and over; parsing
    them again costs more than serving the page. Long (possibly hostile) header values
    are answered without being kept, so what is held stays within a few MB.
    """
    memo = lru_cache(maxsize=2048)(func)

    @wraps(func)
    def answer(*args: str | None) -> _Result:
        for arg in args:
            if arg is not None and len(arg) > 256:
                return func(*args)
        return memo(*args)
    return answer


# Link previewers fetch the card when the SMS is shown or shared; they are not the customer.
_BOTS = re.compile(
    r"whatsapp|facebookexternalhit|facebot|slackbot|slack-imgproxy|telegrambot|twitterbot"
    r"|discordbot|linkedinbot|skypeuripreview|applebot|bingbot|googlebot|google-inspectiontool"
    r"|yandex|baiduspider|bytespider|petalbot|embedly|pinterest|redditbot|vkshare|iframely"
    r"|spider|crawler|preview"
    # generic "...bot" product tokens (e.g. "SomeBot/1.0", "bot;") without matching phone
    # models whose names merely end in "bot" (Cubot)
    r"|[a-z]bot/|(?<![a-z])bot(?![a-z])",
    re.IGNORECASE,
)


@_memoised
def is_bot(user_agent: str) -> bool:
    """True for known link previewers and crawlers; an empty User-Agent is not a person either."""
    return not user_agent.strip() or _BOTS.search(user_agent) is not None


def _address(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not remote:
        return None
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@_memoised
def client_address(remote: str | None, forwarded_for: str) -> str | None:
    """The visitor's address; X-Forwarded-For is believed only from a proxy on this host.

    A reverse proxy on loopback would otherwise make every customer one client, and one
    client's misses would rate-limit them all. The rightmost entry is the one our own
    proxy appended; anything left of it is whatever the visitor chose to send.
    """
    address = _address(remote)
    if address is not None and address.is_loopback and forwarded_for.strip():
        forwarded = _address(forwarded_for.rsplit(",", 1)[-1].strip())
        if forwarded is not None:
            return str(forwarded)
    return remote


@_memoised
def anonymise(remote: str | None) -> str:
    """The network a visit came from, never the address: IPv4 /24, IPv6 /48."""
    address = _address(remote)
    if address is None:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


@_memoised
def client_key(remote: str | None) -> str:
    """Rate-limit key: one IPv4 address or one IPv6 /64 (a single subscriber's allocation)."""
    address = _address(remote)
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


class SlidingLimiter:
    """At most `limit` events per client in any `window` seconds (in memory, clock injected)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float],
                 max_clients: int = 50_000) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_clients = max_clients
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self._max_clients:
                self._prune(now)
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def _prune(self, now: float) -> None:
        # Bounded memory under a flood of distinct clients: forget idle ones, then the oldest.
        for key in [k for k, q in self._events.items() if not q or q[-1] <= now - self.window]:
            del self._events[key]
        while len(self._events) >= self._max_clients:
            del self._events[next(iter(self._events))]

    def blocked(self, key: str) -> bool:
        """True when the client already used up its allowance (asking stores nothing)."""
        events = self._events.get(key)
        if not events:
            return False
        return len(self._recent(key, self._clock())) >= self.limit

    def hit(self, key: str) -> None:
        """Count one event for the client."""
        now = self._clock()
        self._recent(key, now).append(now)

    def allow(self, key: str) -> bool:
        """Count one event and say whether it is within the allowance."""
        if self.blocked(key):
            return False
        self.hit(key)
        return True
