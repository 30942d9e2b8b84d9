"""The Store as it was (a thread hop per use case), and a counter of hops to aiosqlite's thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from ccshortlink.store import Store

T = TypeVar("T")


class HopStore(Store):
    """The Store as it was: every use case handed to aiosqlite's thread, one hop each."""

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run the use case on the connection's thread instead of the loop's (`_write` too)."""
        async with self._lock:
            result: T = await self._db._execute(work, self._db._conn)
            return result


def count_hops(store: Store) -> Callable[[], int]:
    """Count hand-offs to aiosqlite's thread from now on; returns a reader of the count."""
    execute = store._db._execute  # every aiosqlite call goes through it
    hops = 0

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await execute(*args, **kwargs)

    store._db._execute = counted  # type: ignore[method-assign]
    return lambda: hops
