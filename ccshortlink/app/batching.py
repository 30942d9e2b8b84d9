"""Group commit: items handed in while a write is under way go to the database together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

# s a batch of writes no customer waits on (message ids, receipts) waits for more before it
# is written: at 100 calls/s a third as many transactions, and less of the daemon's CPU.
LINGER = 0.02

T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """Hands items to `flush` in batches, one batch in flight at a time, results in order.

    Without `linger`, the first item of a quiet period is written at once; items that
    arrive while that write runs wait for it and then go together, so under load one
    transaction carries many rows instead of one each. `flush` returns one result per item;
    a result that is an exception is raised to that item's caller alone, while an exception
    raised by `flush` itself goes to every caller of the batch.

    With `linger`, a batch waits that long for more items before it is written: for writes
    no customer waits on (message ids, receipts), fewer transactions cost the process less
    than the wait does.
    """

    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]], *,
                 max_batch: int = 256, linger: float = 0.0) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._linger = linger
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="group-writer")
        # Shielded: a caller cancelled mid-write must not cancel the batch of the others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                if self._linger and len(self._pending) < self._max_batch:
                    await asyncio.sleep(self._linger)
                batch = self._pending[:self._max_batch]
                del self._pending[:self._max_batch]
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._writer = None
            # Only when the writer itself was cancelled (shutdown): no caller waits for ever.
            for _, future in batch + self._pending:
                if not future.done():
                    future.cancel()
            self._pending.clear()

    async def idle(self) -> None:
        """Wait until everything handed in so far is written (for a clean stop)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
