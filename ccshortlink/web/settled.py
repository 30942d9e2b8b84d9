"""Links whose call-back part cannot change on its own, remembered for a few seconds."""

from __future__ import annotations

from collections.abc import Callable

from ccshortlink.core.records import CallbackView

SETTLED_TTL = 5.0  # seconds, as long as the card cache keeps a link
MAX_SETTLED = 10_000


class SettledCallbacks:
    """The latest call-back of links where nothing is under way: none at all, or one that has
    ended. Only a new tap changes those, so a busy card is not a trip to the database at
    every open. A tap on this daemon forgets the link at once; the page after a tap and its
    refreshes ask afresh (see web.callback), so the customer who tapped never waits; a plain
    open may miss a tap made through another daemon for up to `ttl` seconds."""

    def __init__(self, clock: Callable[[], float], *, ttl: float = SETTLED_TTL) -> None:
        self._clock = clock
        self.ttl = ttl
        self._seen: dict[str, tuple[float, CallbackView | None]] = {}

    def get(self, code: str) -> tuple[bool, CallbackView | None]:
        """(True, the latest) when it was seen settled within `ttl`; (False, None) otherwise."""
        found = self._seen.get(code)
        if found is None or found[0] <= self._clock() - self.ttl:
            return False, None
        return True, found[1]

    def keep(self, code: str, latest: CallbackView | None) -> None:
        if len(self._seen) >= MAX_SETTLED:
            self._seen.clear()  # a flood of distinct codes costs a few more reads, not memory
        self._seen[code] = (self._clock(), latest)

    def forget(self, code: str) -> None:
        self._seen.pop(code, None)
