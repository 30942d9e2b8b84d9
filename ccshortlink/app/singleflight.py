"""One load per key in flight: callers asking for the same key meanwhile share its result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """The many requests that miss a cache at once wait for one load instead of queueing
    the same read at the database; a caller that hangs up does not cancel it for the others."""

    def __init__(self) -> None:
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """`load()`'s result, started now unless a load of `key` is already under way."""
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(load())
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._done(key, done))
        # shield: one visitor hanging up must not cancel the load the others wait for
        return await asyncio.shield(loading)

    def _done(self, key: K, done: asyncio.Future[V]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so a failure nobody awaited is not reported twice

    def forget(self, key: K) -> None:
        """Later callers start a new load rather than join the one under way (after a change)."""
        self._loading.pop(key, None)
