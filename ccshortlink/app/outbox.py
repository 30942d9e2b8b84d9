"""Claims due SMS from the durable outbox, submits them over SMPP, retries with backoff."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ccshortlink.app.batching import LINGER, GroupWriter
from ccshortlink.app.dbfaults import Outage, until_stored
from ccshortlink.app.ports import GatewayClosed, Log, OutboxStore, SmsGateway, SubmitRejected
from ccshortlink.core.describe import describe
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.records import OutboxSms, SubmittedSms
from ccshortlink.core.sms import EncodedSms
from ccshortlink.core.vocab import SmsStatus

# Backoff for SMS that failed for a temporary reason (capped so a long outage retries hourly).
RETRY_BASE = 30.0
RETRY_CAP = 3600.0
DRAIN_TIMEOUT = 10.0  # s at most for the SMS in flight at a stop
# s for cancelled submits to put their SMS back in the queue (one quick write each)
CANCELLED_WAIT = 2.0


T = TypeVar("T")


class Outbox:
    """Keeps up to `concurrency` SMS in flight; the gateway owns the SMPP window itself."""

    def __init__(self, *, store: OutboxStore, gateway: SmsGateway,
                 clock: Callable[[], float], log: Log, max_attempts: int, concurrency: int,
                 on_status: Callable[[str], None] = lambda status: None) -> None:
        self.store = store
        self.gateway = gateway
        self.clock = clock
        self.log = log
        self.max_attempts = max_attempts
        self.concurrency = max(1, concurrency)
        self.on_status = on_status
        self._wake = asyncio.Event()
        self._queue_may_hold_more = True  # the last claim was full: a freed slot claims again
        self._in_flight: dict[asyncio.Task[None], OutboxSms] = {}
        self._giving_back: set[asyncio.Task[None]] = set()
        self._accepted: set[int] = set()  # in flight, and the SMSC took it: never resent
        # Message ids share one commit: those of the submits answered within LINGER of each
        # other (the SMS is at the SMSC already; a receipt waits for its ids, ids_stored).
        self._submitted = GroupWriter(store.mark_submitted_many, linger=LINGER)
        # The database failing (locked, disk full) pauses the outbox; it never stops it.
        self._claims = Outage(log, "outbox", store.is_fault)
        self._writes = Outage(log, "sms_status", store.is_fault)
        self._stop = asyncio.Event()

    def wake(self) -> None:
        """A new SMS was queued: look at the outbox now rather than at the next tick."""
        self._queue_may_hold_more = True  # even if every slot is busy now: when one frees
        self._wake.set()

    async def ids_stored(self) -> None:
        """Wait until the message ids of every submit answered so far are in the database."""
        await self._submitted.idle()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event, *,
                  drain_timeout: Callable[[], float] = lambda: DRAIN_TIMEOUT) -> None:
        """Until `stop`, then let the SMS in flight finish for `drain_timeout()` s (read at the
        stop: the daemon's shutdown budget decides)."""
        self._stop = stop
        try:
            recovered = await until_stored(
                lambda: self.store.recover_interrupted(self.clock()), self._claims, stop)
        except Exception as exc:
            if not self.store.is_fault(exc):
                raise
            return  # stopped before the database took a write: nothing was claimed either
        if recovered:
            self.log.warning("sms_recovered", count=recovered,
                             reason="left mid-submit by the previous run; resending")
        while not stop.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._in_flight)
            next_due = None
            if free > 0:
                try:
                    claimed = await self.store.claim_due_sms(self.clock(), free)
                except Exception as exc:
                    if not self.store.is_fault(exc):
                        raise
                    # Nothing was claimed (the transaction rolled back): try again later.
                    await self._wait(stop, self.clock() + self._claims.failed(exc), wake=False)
                    continue
                self._claims.succeeded()
                # Fewer than asked for: nothing else was due, so a slot that frees up needs
                # no claim of its own (a newly queued SMS wakes the loop, a due one its timer).
                self._queue_may_hold_more = len(claimed.sms) >= free
                next_due = claimed.next_due_at
                for sms in claimed.sms:
                    task = asyncio.create_task(self._send(sms), name=f"sms-{sms.id}")
                    self._in_flight[task] = sms
                    task.add_done_callback(self._done)
            # Either nothing more is due or every slot is busy: a freed slot or a newly
            # queued SMS sets the wake event, so nothing waits longer than it must.
            await self._wait(stop, next_due)
        await self._drain(drain_timeout())
        await self._submitted.idle()  # a cancelled submit's message ids are still stored

    def _done(self, task: asyncio.Task[None]) -> None:
        sms = self._in_flight.pop(task)
        if self._queue_may_hold_more:
            self._wake.set()
        accepted = sms.id in self._accepted
        self._accepted.discard(sms.id)
        error = None if task.cancelled() else task.exception()
        if error is None:
            return
        self.log.error("sms_task_failed", sms_id=sms.id, error=repr(error), submitted=accepted)
        if accepted or self.store.is_fault(error):
            # The SMSC has it (sending it again would double it now), or the database refused
            # at a stop: left 'submitting', as a stop leaves an SMS.
            return
        # A bug before the SMSC took it: not left 'submitting' (on PostgreSQL leased, the
        # lease renewed) until a restart, but queued again with the usual backoff.
        back = asyncio.create_task(self._give_back(sms, repr(error)))
        self._giving_back.add(back)
        back.add_done_callback(self._giving_back.discard)

    def _log_of(self, sms: OutboxSms) -> Log:
        # An answer to a reply has no link, so no code.
        return self.log.bind(sms_id=sms.id, code=sms.code or None,
                             customer=mask_number(sms.destination), attempt=sms.attempts)

    async def _give_back(self, sms: OutboxSms, error: str) -> None:
        log = self._log_of(sms)
        try:
            await self._retry(sms, log, f"its send task failed: {error}")
        except Exception as exc:
            self.store.let_go(sms.id)
            log.error("sms_give_back_failed", error=repr(exc),
                      reason="left as submitting: another daemon takes it over once its lease"
                             " runs out, or the next start sends it")

    async def _wait(self, stop: asyncio.Event, due: float | None, *, wake: bool = True) -> None:
        if wake:
            timeout = 1.0 if due is None else min(1.0, max(0.0, due - self.clock()))
        else:  # backing off: a newly queued SMS does not make the database work again
            timeout = max(0.0, (due or 0.0) - self.clock())
        waiters = [asyncio.ensure_future(stop.wait())]
        if wake:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _drain(self, timeout: float) -> None:
        """Graceful stop: let in-flight submits finish, for a bounded time."""
        if self._in_flight:
            self.log.info("outbox_draining", in_flight=len(self._in_flight))
            abandoned = await _finish_or_cancel(set(self._in_flight), timeout)
            if abandoned:
                self.log.warning("outbox_drain_timeout", abandoned=abandoned,
                                 reason="left as submitting; resent on next start")
        # One quick write each, as for the cancelled ones; one left 'submitting' is sent by
        # the next start.
        await _finish_or_cancel(set(self._giving_back), CANCELLED_WAIT)

    async def _send(self, sms: OutboxSms) -> None:
        now = self.clock()
        log = self._log_of(sms)
        if now >= sms.expires_at:
            await self._stored(lambda: self.store.mark_failed(
                sms.id, now, status=SmsStatus.EXPIRED, smpp_status=None,
                error="not submitted before it expired"))
            log.warning("sms_expired")
            self.on_status(SmsStatus.EXPIRED)
            return
        encoded = EncodedSms(data_coding=sms.data_coding, esm_class=sms.esm_class, parts=sms.parts)
        try:
            message_ids = await self.gateway.submit(sms.destination, encoded)
        except SubmitRejected as exc:
            at, status, error = self.clock(), exc.status, str(exc)
            await self._stored(lambda: self.store.mark_failed(
                sms.id, at, status="failed", smpp_status=status, error=error))
            log.error("sms_failed", smpp_status=f"0x{exc.status:02X}", error=str(exc))
            self.on_status("failed")
        except (GatewayClosed, asyncio.CancelledError):
            # Shutting down: back to the queue now, so the next start sends it at once. If
            # the database refuses, it stays 'submitting' and the next start requeues it.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.retry_later(sms.id, self.clock(), self.clock(),
                                                            "interrupted by shutdown"))
            raise
        except Exception as exc:  # anything else is temporary: retry with backoff
            await self._retry(sms, log, repr(exc))
        else:
            self._accepted.add(sms.id)
            record = SubmittedSms(sms.id, tuple(message_ids), self.clock())
            try:
                # Kept in flight until stored: while 'submitting' in the database, a restart
                # would send it again, so the ids are retried for as long as the daemon runs.
                await self._stored(lambda: self._submitted.write(record))
            except Exception as exc:
                if not self.store.is_fault(exc):
                    raise
                log.error("sms_submitted_unrecorded", message_ids=message_ids,
                          error=describe(exc),
                          reason="stopped before the database took the message ids: the next"
                                 " start sends this SMS again")
                return
            log.info("sms_submitted", message_ids=message_ids, parts=len(sms.parts))
            self.on_status("submitted")

    async def _retry(self, sms: OutboxSms, log: Log, error: str) -> None:
        now = self.clock()
        if sms.attempts >= self.max_attempts:
            await self._stored(lambda: self.store.mark_failed(
                sms.id, now, status="failed", smpp_status=None,
                error=f"gave up after {sms.attempts} attempts: {error}"))
            log.error("sms_failed", error=error, reason="too many attempts")
            self.on_status("failed")
            return
        delay = min(RETRY_CAP, RETRY_BASE * 2 ** (sms.attempts - 1))
        await self._stored(lambda: self.store.retry_later(sms.id, now, now + delay, error))
        self.wake()  # the next claim's due time counts this one
        log.warning("sms_retry_scheduled", error=error, retry_in=delay)

    async def _stored(self, write: Callable[[], Awaitable[T]]) -> T:
        """`write()`, tried again with backoff while the database fails, until the stop."""
        return await until_stored(write, self._writes, self._stop)


async def _finish_or_cancel(tasks: set[asyncio.Task[None]], timeout: float) -> int:
    """Wait `timeout` s for `tasks`; cancel the rest and give them CANCELLED_WAIT s to put
    their SMS back. How many were cancelled."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=CANCELLED_WAIT)
    return len(pending)
