"""GroupWriter: rows handed in while a write runs share the next one, results in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ccshortlink.app.batching import GroupWriter


class SlowSink:
    """Records each batch it was asked to write; the write takes a loop turn or two."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)
        if self.fail_on in items:
            raise RuntimeError("disk full")
        return [item * 10 for item in items]


async def test_first_item_is_written_at_once_and_the_rest_together() -> None:
    sink = SlowSink()
    writer = GroupWriter(sink.write)
    first = asyncio.create_task(writer.write(1))
    await asyncio.sleep(0)  # the first write is under way ...
    rest = [asyncio.create_task(writer.write(n)) for n in range(2, 7)]  # ... these wait for it
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50, 60]
    assert sink.batches == [[1], [2, 3, 4, 5, 6]]


async def test_with_linger_items_handed_in_a_moment_apart_share_one_write() -> None:
    sink = SlowSink()
    writer = GroupWriter(sink.write, linger=0.05)
    first = asyncio.create_task(writer.write(1))
    await asyncio.sleep(0.01)  # the first waits for company ...
    assert sink.batches == []
    second = asyncio.create_task(writer.write(2))
    assert await asyncio.gather(first, second) == [10, 20]
    assert sink.batches == [[1, 2]]  # ... and gets it
    await writer.idle()


async def test_batches_are_capped() -> None:
    sink = SlowSink()
    writer = GroupWriter(sink.write, max_batch=2)
    assert await asyncio.gather(*(writer.write(n) for n in range(5))) == [0, 10, 20, 30, 40]
    assert sink.batches == [[0, 1], [2, 3], [4]]


async def test_a_failed_write_fails_its_own_batch_only() -> None:
    sink = SlowSink(fail_on=2)
    writer = GroupWriter(sink.write)
    first = asyncio.create_task(writer.write(1))
    await asyncio.sleep(0)
    doomed = [asyncio.create_task(writer.write(n)) for n in (2, 3)]
    assert await first == 10
    for task in doomed:
        with pytest.raises(RuntimeError, match="disk full"):
            await task
    assert await writer.write(4) == 40  # the writer carries on


async def test_a_cancelled_caller_does_not_cancel_the_write() -> None:
    sink = SlowSink()
    writer = GroupWriter(sink.write)
    impatient = asyncio.create_task(writer.write(1))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    await writer.idle()
    assert sink.batches == [[1]]


async def test_an_item_whose_own_result_is_an_error_fails_alone() -> None:
    async def flush(items: Sequence[int]) -> list[int | Exception]:
        return [ValueError(f"bad {i}") if i == 2 else i for i in items]

    writer = GroupWriter(flush)
    results = await asyncio.gather(*(writer.write(n) for n in (1, 2, 3)),
                                   return_exceptions=True)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError)


async def test_a_cancelled_writer_leaves_no_caller_waiting() -> None:
    started = asyncio.Event()

    async def never(items: Sequence[int]) -> list[int]:
        started.set()
        await asyncio.sleep(3600)
        return list(items)

    writer = GroupWriter(never)
    waiting = [asyncio.create_task(writer.write(n)) for n in range(3)]
    await started.wait()
    assert writer._writer is not None
    writer._writer.cancel()
    done, pending = await asyncio.wait(waiting, timeout=1.0)
    assert not pending and all(task.cancelled() for task in done)
