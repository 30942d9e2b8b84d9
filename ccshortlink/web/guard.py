"""Who is asking: anonymised client addresses, link-preview bots, per-client rate limits."""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar
from urllib.parse import urlsplit

from ccshortlink.core.privacy import anonymise_address
from ccshortlink.core.privacy import ip_address_of as _address

_Result = TypeVar("_Result")


def _memoised(func: Callable[..., _Result]) -> Callable[..., _Result]:
    """Remember a pure function's answers for inputs of ordinary length.

    A busy card sees the same few hundred addresses and browsers over and over; parsing
    them again costs more than serving the page. Long (possibly hostile) header values
    are answered without being kept, so what is held stays within a few MB.
    """
    memo = lru_cache(maxsize=2048)(func)

    @wraps(func)
    def answer(*args: str | tuple[str, ...] | None) -> _Result:
        for arg in args:
            if isinstance(arg, str) and len(arg) > 256:
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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def trusted_networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """`[web] trusted_proxies` as networks; an entry that is neither address nor network
    trusts nothing (config checks report it)."""
    networks = []
    for entry in trusted:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{max(0, network.prefixlen - 96)}",
                                           strict=False)
        networks.append(network)
    return tuple(networks)


def unusable_proxies(trusted: tuple[str, ...]) -> list[str]:
    """The `trusted_proxies` entries that are neither an address nor a network."""
    unusable = []
    for entry in trusted:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            unusable.append(entry)
    return unusable


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


@_memoised
def client_address(remote: str | None, forwarded_for: str,
                   trusted: tuple[str, ...] = ()) -> str | None:
    """The visitor's address: the peer, unless the peer is one of our `trusted` proxies.

    Then X-Forwarded-For is read from the right, each entry appended by the hop after it,
    and the first address that is not itself a trusted proxy is the client. Anything left
    of that is whatever the visitor chose to send, so it is never read. With no trusted
    proxies (the default) the header counts for nothing: anyone can send one.
    """
    address = _address(remote)
    networks = trusted_networks(trusted)
    if address is None or not networks or not _trusted(address, networks):
        return remote
    client = address
    for entry in reversed(forwarded_for.split(",")):
        hop = _address(entry.strip())
        if hop is None:
            break  # garbage from beyond our proxies: the last hop we know stands
        client = hop
        if not _trusted(hop, networks):
            break
    return str(client)


anonymise = _memoised(anonymise_address)  # the rule lives in core.privacy


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


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased, without the scheme's default port."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if not parts.scheme or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme.lower()}://{host}{suffix}"


@_memoised
def post_refusal(fetch_site: str, origin: str | None, referer: str | None, public_url: str,
                 host: str) -> str:
    """Why a state-changing POST is refused, or "" when it came from our own page.

    Accepted only on positive evidence: `Sec-Fetch-Site: same-origin`, else an Origin that
    is `public_url`'s or this server's own host, else (no usable Origin) a Referer from
    either. The card is served with `Referrer-Policy: same-origin`, so every browser that
    posts its form sends its real Origin or Referer; "Origin: null" comes from sandboxed
    frames and data: pages. A request with neither header is a script, not a page of ours:
    refused too (the CRM's send API is token-checked and never comes here).
    """
    site = fetch_site.strip().lower()
    if site == "same-origin":
        return ""
    if site:  # cross-site, same-site, none: the browser itself says it is not our page
        return "cross_site"
    ours = (_origin(public_url), host.strip().lower())
    presented = (origin or "").strip()
    if presented and presented != "null":
        return "" if _is_ours(_origin(presented), ours) else "foreign_origin"
    if referer and referer.strip():
        return "" if _is_ours(_origin(referer), ours) else "foreign_referer"
    return "null_origin" if presented == "null" else "no_origin"


def _is_ours(presented: str, ours: tuple[str, str]) -> bool:
    public, own_host = ours
    return bool(presented) and (presented == public or presented.split("://", 1)[1] == own_host)


def is_foreign_post(fetch_site: str, origin: str | None, referer: str | None, public_url: str,
                    host: str) -> bool:
    """True when the POST is refused (see post_refusal)."""
    return bool(post_refusal(fetch_site, origin, referer, public_url, host))
