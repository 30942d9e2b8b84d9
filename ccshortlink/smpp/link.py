"""The SMPP I/O thread: owns the smpplib client, window, rate, deadlines and reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Awaitable, Callable
from typing import Any

from ccshortlink.config.settings import SmppConfig
from ccshortlink.core.privacy import mask_number
from ccshortlink.ops.logs import Logger
from ccshortlink.smpp.delivery import Deliveries
from ccshortlink.smpp.mailbox import AnswerDeliver, Close, Mailbox, Submit, settle
from ccshortlink.smpp.vocab import (
    AUTH_FAILURES,
    RETRY_LATER,
    STATUS_INVALID_COMMAND,
    DeliveryReceipt,
    MobileOriginated,
    SmppAuthError,
    SmppClosed,
    SubmitRejected,
    pdu_text,
)
from ccshortlink.smpp.window import Part, Submission, SubmitWindow
from ccshortlink.smpp.wire import LinkDown, SmscConnection

RECONNECT_FIRST_DELAY = 0.1


class SmppLink:
    """The I/O thread's side of SmppClient: binds, serves the session, reconnects with backoff."""

    def __init__(self, config: SmppConfig, mailbox: Mailbox, *, loop: asyncio.AbstractEventLoop,
                 started: asyncio.Future[BaseException | None], on_stopped: Callable[[], None],
                 on_receipt: Callable[[DeliveryReceipt], Awaitable[None]],
                 on_mobile_originated: Callable[[MobileOriginated], Awaitable[None]],
                 log: Logger, clock: Callable[[], float]) -> None:
        """`started` gets the outcome of the first bind; `on_stopped` runs on `loop` at the end."""
        self._config = config
        self._mailbox = mailbox
        self._loop = loop
        self._started = started
        self._on_stopped = on_stopped
        self._deliveries = Deliveries(mailbox, loop=loop, on_receipt=on_receipt,
                                      on_mobile_originated=on_mobile_originated, log=log)
        self._log = log
        self._clock = clock
        self.bound = False  # read on the loop
        self._connection: SmscConnection | None = None  # while bound
        self._generation = 0  # bumped per bind: answers owed on older connections are moot
        self._window = SubmitWindow(config.window, config.max_per_second)
        self._enquire: tuple[int, float] | None = None  # (sequence, sent_at)
        self._close_deadline: float | None = None

    def io_main(self) -> None:
        """The thread's target: runs until closed on request or the first bind is refused."""
        try:
            self._run()
        except Exception:
            self._log.exception("smpp_thread_failed")
        finally:
            self.bound = False
            failure = SmppClosed("SMPP client stopped")
            for part in self._window.clear():
                self._finish(part.submission, None, failure)
            self._post(self._on_stopped)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the event loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting now
            self._loop.call_soon_threadsafe(callback, *args)

    def _finish(self, submission: Submission, result: list[str] | None,
                error: BaseException | None) -> None:
        if not submission.settled:
            submission.settled = True
            self._post(settle, submission.future, result, error)

    def _run(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        first_attempt = True
        down_logged = False
        while True:
            self._drain_requests()
            if self._close_deadline is not None:
                return
            try:
                connection = self._connect()
            except SmppAuthError as exc:
                if first_attempt:
                    self._log.error("smpp_bind_refused", status=exc.status)
                    self._post(settle, self._started, exc, None)
                    return
                reason = f"bind refused: status 0x{exc.status:02X}"
            except LinkDown as exc:
                if self._close_deadline is not None:
                    return
                reason = str(exc)
            else:
                self._log.info("smpp_bound", queued=self._window.queued, **connection.tls_fields)
                if first_attempt:
                    self._post(settle, self._started, None, None)
                first_attempt, down_logged, delay = False, False, RECONNECT_FIRST_DELAY
                try:
                    self._serve(connection)
                    return  # closed on request
                except LinkDown as exc:
                    reason = str(exc)
                finally:
                    unacknowledged = self._hang_up(connection)
                if not down_logged:
                    self._log.warning("smpp_disconnected", reason=reason,
                                      unacknowledged=unacknowledged)
                    down_logged = True
            if first_attempt:
                self._post(settle, self._started, None, None)
                first_attempt = False
            if not down_logged:
                self._log.warning("smpp_disconnected", reason=reason)
                down_logged = True
            else:
                self._log.debug("smpp_reconnect_failed", reason=reason, retry_in=delay)
            self._pause(delay)
            delay = min(delay * 2, self._config.reconnect_max)

    def _pause(self, seconds: float) -> None:
        deadline = self._clock() + seconds
        while self._close_deadline is None and (remaining := deadline - self._clock()) > 0:
            select.select([self._mailbox.wake_fd], [], [], remaining)
            self._drain_requests()

    def _connect(self) -> SmscConnection:
        config = self._config
        connection = SmscConnection(config, self._mailbox, log=self._log, clock=self._clock)
        try:
            connection.connect()
            bind = connection.make("bind_transceiver", system_id=config.system_id,
                                   password=config.password, system_type=config.system_type)
            connection.send(bind)
            deadline = self._clock() + config.response_timeout
            while True:
                if not self._wait(connection, deadline - self._clock()):
                    if self._close_deadline is not None:
                        raise LinkDown("closing")
                    if self._clock() >= deadline:
                        raise LinkDown(f"no bind response within {config.response_timeout:g}s")
                    continue
                response = connection.read()
                if response is not None and response.sequence == bind.sequence:
                    break
        except LinkDown:
            self._hang_up(connection)
            raise
        if response.status != 0:
            self._hang_up(connection)
            if response.status in AUTH_FAILURES:
                raise SmppAuthError(response.status)
            raise LinkDown(f"bind refused: status 0x{response.status:02X}")
        self._connection = connection
        self.bound = True
        self._generation += 1
        connection.last_heard = self._clock()
        self._enquire = None
        return connection

    def _hang_up(self, connection: SmscConnection) -> int:
        """Close the socket and queue every unacknowledged part for resending, in order."""
        self.bound = False
        self._connection = None
        connection.hang_up()
        return self._window.requeue_unacknowledged()

    def _wait(self, connection: SmscConnection, timeout: float) -> bool:
        """Wait for the SMSC or a request; True when a PDU is ready to read."""
        pdu_ready, woken = connection.wait(timeout)
        if woken:
            self._drain_requests()
        return pdu_ready

    def _drain_requests(self) -> None:
        self._mailbox.clear_wakeups()
        while (request := self._mailbox.take()) is not None:
            match request:
                case Submit(submission):
                    self._window.add(submission)
                case Close(deadline):
                    self._close_deadline = deadline
                case AnswerDeliver(generation, sequence, status):
                    # An answer owed on a dropped connection is moot: the SMSC will redeliver.
                    if self._connection is not None and generation == self._generation:
                        self._connection.respond("deliver_sm_resp", sequence, status)

    def _serve(self, connection: SmscConnection) -> None:
        """Run one bound session until closed on request (returns) or the link dies (raises)."""
        while True:
            now = self._clock()
            if self._close_deadline is not None and (
                    now >= self._close_deadline or not self._window.has_live_parts()):
                self._unbind(connection)
                return
            self._send_due(connection, now)
            if self._wait(connection, self._next_timeout(connection, now)):
                pdu = connection.read()
                if pdu is not None:
                    self._dispatch(connection, pdu)
            self._check_deadlines(connection, self._clock())

    def _send_due(self, connection: SmscConnection, now: float) -> None:
        pdus = []
        while (part := self._window.next_due(now)) is not None:
            pdu = connection.make_submit_sm(part.submission.destination, part.submission.sms,
                                            part.index)
            self._window.sent(pdu.sequence, part, now)  # before sending: no lost answer
            pdus.append(pdu)
        if pdus:
            connection.send_many(pdus)

    def _next_timeout(self, connection: SmscConnection, now: float) -> float:
        config = self._config
        deadlines = [now + 1.0]
        if (send_at := self._window.next_send_at()) is not None:
            deadlines.append(send_at)
        if (oldest := self._window.oldest_sent_at()) is not None:
            deadlines.append(oldest + config.response_timeout)
        if self._enquire is None:
            deadlines.append(connection.last_heard + config.enquire_link_interval)
        else:
            deadlines.append(self._enquire[1] + config.response_timeout)
        if self._close_deadline is not None:
            deadlines.append(self._close_deadline)
        return min(deadlines) - now

    def _check_deadlines(self, connection: SmscConnection, now: float) -> None:
        config = self._config
        oldest = self._window.oldest_sent_at()
        if oldest is not None and now - oldest > config.response_timeout:
            raise LinkDown(f"no submit_sm_resp within {config.response_timeout:g}s")
        if self._enquire is not None:
            if now - self._enquire[1] > config.response_timeout:
                raise LinkDown(f"no enquire_link_resp within {config.response_timeout:g}s")
        elif now - connection.last_heard >= config.enquire_link_interval:
            pdu = connection.make("enquire_link")
            self._enquire = (pdu.sequence, now)
            connection.send(pdu)

    def _dispatch(self, connection: SmscConnection, pdu: Any) -> None:
        command = pdu.command
        if command in ("submit_sm_resp", "generic_nack") and self._window.awaits(pdu.sequence):
            self._submit_answered(self._window.answered(pdu.sequence), pdu)
        elif command == "deliver_sm":
            self._deliveries.deliver(connection, pdu, self._generation)
        elif command == "enquire_link":
            connection.respond("enquire_link_resp", pdu.sequence)
        elif command in ("enquire_link_resp", "generic_nack") and (
                self._enquire is not None and pdu.sequence == self._enquire[0]):
            self._enquire = None
        elif command == "unbind":
            connection.respond("unbind_resp", pdu.sequence)
            raise LinkDown("the SMSC unbound")
        elif pdu.is_request() and command != "alert_notification":  # alerts take no answer
            connection.respond("generic_nack", pdu.sequence, STATUS_INVALID_COMMAND)
        else:
            self._log.debug("smpp_unexpected_pdu", command=command, sequence=pdu.sequence)

    def _submit_answered(self, part: Part, pdu: Any) -> None:
        status = pdu.status
        submission = part.submission
        if status == 0:
            message_ids = self._window.accepted(part, pdu_text(getattr(pdu, "message_id", b"")))
            if message_ids is not None:
                self._finish(submission, message_ids, None)
        elif status in RETRY_LATER:
            self._window.resend(part)
            if self._window.starts_new_pause(part):
                backoff = self._window.pause(self._clock())
                if backoff is not None:
                    self._log.warning("smpp_throttled", status=f"0x{status:02X}", backoff=backoff)
        elif part.live:
            self._log.warning("smpp_submit_rejected", status=f"0x{status:02X}",
                              customer_number=mask_number(submission.destination),
                              part=part.index + 1, parts=len(submission.sms.parts))
            self._finish(submission, None, SubmitRejected(status))

    def _unbind(self, connection: SmscConnection) -> None:
        """Say goodbye politely, but never wait long for an answer."""
        deadline = self._clock() + min(1.0, self._config.response_timeout)
        try:
            connection.send(connection.make("unbind"))
            while (remaining := deadline - self._clock()) > 0:
                if self._wait(connection, remaining):
                    pdu = connection.read()
                    if pdu is not None and pdu.command == "unbind_resp":
                        break
        except LinkDown:
            pass
        self._log.info("smpp_closed")
