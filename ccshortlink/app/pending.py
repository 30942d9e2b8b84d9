"""Finished calls waiting to be decided: kept in order, and bounded, while the database
refuses them (locked by another process, disk full)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import Generic, TypeVar

Item = TypeVar("Item")
# Calls held in memory at most: about 3 MB, hours of a busy call centre's hang-ups.
DECISION_BACKLOG = 10_000


class DecisionBacklog(Generic[Item]):
    """Oldest first; a batch is taken from the front and only removed once decided."""

    def __init__(self, limit: int = DECISION_BACKLOG) -> None:
        self.limit = limit
        self._items: deque[Item] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Item) -> bool:
        """Keep `item` behind the others; False (nothing kept) when the bound is reached."""
        if len(self._items) >= self.limit:
            return False
        self._items.append(item)
        return True

    def front(self, count: int) -> list[Item]:
        """The oldest `count` items, left in place until `settle`."""
        return list(islice(self._items, count))

    def settle(self, batch: Sequence[Item], again: Sequence[bool]) -> None:
        """`batch` (the front) was tried: drop it but for the items to try `again`, which
        stay at the front in their order."""
        for _ in batch:
            self._items.popleft()
        tried = list(zip(batch, again, strict=True))
        self._items.extendleft(item for item, retry in reversed(tried) if retry)

    def take_all(self) -> list[Item]:
        items = list(self._items)
        self._items.clear()
        return items
