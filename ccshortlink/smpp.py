"""SMPP transceiver: smpplib in one I/O thread; async submit, receipts and MO back on the loop."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from ccshortlink.config import SmppConfig
from ccshortlink.logs import Logger, mask_number
from ccshortlink.sms import EncodedSms, decode_parts

AUTH_FAILURES = frozenset({0x0D, 0x0E, 0x0F})  # bind failed, invalid password, invalid system_id
RETRY_LATER = frozenset({0x58, 0x14})  # throttled, message queue full: resend the same part
STATUS_SYSTEM_ERROR = 0x08
STATUS_INVALID_COMMAND = 0x03
RECONNECT_FIRST_DELAY = 0.1
THROTTLE_FIRST_DELAY = 0.05
THROTTLE_MAX_DELAY = 2.0
# esm_class bits 2-5 give the message type: SMSC delivery receipt, intermediate notification.
RECEIPT_TYPES = frozenset({0x04, 0x20})
RECEIPT_STATES = ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "UNKNOWN", "DELETED",
                  "ENROUTE")
_STATE_BY_TLV = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
_STATE_ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "REJECTED": "REJECTD",
                  "ACCEPTED": "ACCEPTD"}
_RECEIPT_FIELD = re.compile(r"(?<![\w])(id|stat|err):(\S*)", re.IGNORECASE)
# Whatever a peer can send that smpplib fails to parse; the stream stays in step (read whole).
_UNPARSABLE = (smpplib.exceptions.UnknownCommandError, smpplib.exceptions.PDUError, KeyError,
               ValueError, IndexError, TypeError, struct.error)


class SmppAuthError(Exception):
    """The SMSC refused our system_id/password: retrying will not help."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"SMSC refused the bind (status 0x{status:02X}): check system_id/password")


class SubmitRejected(Exception):
    """The SMSC permanently refused a part of the message."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"SMSC rejected submit_sm with status 0x{status:02X}")


class SmppClosed(Exception):
    """The client is closed (or closing); the message was not fully submitted."""


@dataclass(frozen=True)
class DeliveryReceipt:
    message_id: str
    state: str  # one of RECEIPT_STATES
    error_code: str
    text: str


@dataclass(frozen=True)
class MobileOriginated:
    source_addr: str
    destination_addr: str
    text: str


def parse_receipt(body: str, receipted_message_id: str = "",
                  message_state: int | None = None) -> DeliveryReceipt:
    """Read a receipt: TLVs when present, else the customary `id: stat: err: text:` body."""
    # Only the part before `text:` holds fields; the excerpt may contain anything.
    marker = re.search(r"text:", body, re.IGNORECASE)
    head, excerpt = (body[:marker.start()], body[marker.end():]) if marker else (body, "")
    fields = {key.lower(): value for key, value in _RECEIPT_FIELD.findall(head)}
    state = _STATE_BY_TLV.get(message_state or 0) or fields.get("stat", "").upper()
    state = _STATE_ALIASES.get(state, state)
    return DeliveryReceipt(
        message_id=receipted_message_id or fields.get("id", ""),
        state=state if state in RECEIPT_STATES else "UNKNOWN",
        error_code=fields.get("err", ""),
        text=excerpt,
    )


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\0")
    return "" if value is None else str(value)


def _describe(exc: BaseException) -> str:
    cause = exc.__context__ if str(exc) in ("", "Connection refused") and exc.__context__ else exc
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


class _LinkDown(Exception):
    """The current connection is unusable; the message says why."""


@dataclass(eq=False)
class _Submission:
    destination: str
    sms: EncodedSms
    future: asyncio.Future[list[str]]
    message_ids: list[str | None]
    abandoned: bool = False  # set on the loop when the caller stops waiting
    settled: bool = False  # I/O thread only


@dataclass(eq=False)
class _Part:
    submission: _Submission
    index: int
    sent_at: float = 0.0

    @property
    def live(self) -> bool:
        return not (self.submission.settled or self.submission.abandoned)


class SmppClient:
    """Submits SMS and receives receipts/MO over one SMPP transceiver bind."""

    def __init__(self, config: SmppConfig, *,
                 on_receipt: Callable[[DeliveryReceipt], Awaitable[None]],
                 on_mobile_originated: Callable[[MobileOriginated], Awaitable[None]],
                 log: Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._on_receipt = on_receipt
        self._on_mobile_originated = on_mobile_originated
        self._log = log.bind(smsc=f"{config.host}:{config.port}", system_id=config.system_id)
        self._clock = clock
        self._requests: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._first_outcome: asyncio.Future[BaseException | None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closing = False
        self._bound = False
        # Owned by the I/O thread from here on.
        self._client: smpplib.client.Client | None = None
        self._generation = 0
        self._ready: deque[_Part] = deque()
        self._inflight: dict[int, _Part] = {}
        self._next_slot = 0.0
        self._throttled_until = 0.0
        self._throttle_started = float("-inf")
        self._throttle_delay = THROTTLE_FIRST_DELAY
        self._throttle_logged = False
        self._enquire: tuple[int, float] | None = None  # (sequence, sent_at)
        self._last_heard = 0.0
        self._close_deadline: float | None = None

    # ---- event-loop side -------------------------------------------------------------------

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("SmppClient.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._first_outcome = self._loop.create_future()
        self._stopped = self._loop.create_future()
        self._thread = threading.Thread(target=self._io_main, name="smpp-io", daemon=True)
        self._thread.start()
        error = await self._first_outcome
        if error is not None:
            await asyncio.shield(self._stopped)
            raise error

    @property
    def bound(self) -> bool:
        return self._bound

    async def submit(self, destination: str, sms: EncodedSms) -> list[str]:
        """Submit every part; return one message_id per part once all are acknowledged."""
        if self._closing or self._loop is None or self._stopped is None or self._stopped.done():
            raise SmppClosed("SMPP client is not running")
        if not sms.parts:
            raise ValueError("an SMS has at least one part")
        future: asyncio.Future[list[str]] = self._loop.create_future()
        submission = _Submission(destination, sms, future, [None] * len(sms.parts))
        self._request("submit", submission)
        try:
            return await future
        except asyncio.CancelledError:
            submission.abandoned = True  # unsent parts are dropped by the I/O thread
            raise

    async def close(self, timeout: float = 5.0) -> None:
        """Finish in-flight submits (up to `timeout`), unbind and stop the I/O thread."""
        self._closing = True
        if self._thread is None or self._stopped is None:
            self._close_pipe()
            return
        if not self._stopped.done():
            self._request("close", self._clock() + timeout)
            # A blocked connect/send/read gives up after response_timeout at worst.
            grace = timeout + self._config.response_timeout + 1.0
            try:
                await asyncio.wait_for(asyncio.shield(self._stopped), grace)
            except TimeoutError:
                self._log.warning("smpp_close_timeout", seconds=grace)
                return
        await asyncio.to_thread(self._thread.join, 1.0)
        if not self._thread.is_alive():
            self._close_pipe()

    def _request(self, *request: Any) -> None:
        self._requests.put(request)
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (already awake) or closed (thread gone)

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the event loop (called from the I/O thread)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    @staticmethod
    def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _on_stopped(self) -> None:
        assert self._stopped is not None
        # submit() runs on this loop too, so nothing can be queued after this drain.
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                break
            if request[0] == "submit":
                self._settle(request[1].future, None, SmppClosed("SMPP client stopped"))
        self._settle(self._stopped, None, None)
        if self._first_outcome is not None:
            self._settle(self._first_outcome, None, None)

    def _handled(self, done: Any, generation: int, sequence: int, kind: str) -> None:
        """Done-callback of a receipt/MO handler, on the loop: answer deliver_sm afterwards."""
        status = 0
        error = None if done.cancelled() else done.exception()
        if done.cancelled() or error is not None:
            status = STATUS_SYSTEM_ERROR
            self._log.error("smpp_handler_failed", kind=kind, exc_info=error)
        self._request("deliver_resp", generation, sequence, status)

    # ---- I/O thread ------------------------------------------------------------------------

    def _io_main(self) -> None:
        try:
            self._run()
        except Exception:
            self._log.exception("smpp_thread_failed")
        finally:
            self._bound = False
            failure = SmppClosed("SMPP client stopped")
            for part in [*self._inflight.values(), *self._ready]:
                self._finish(part.submission, None, failure)
            self._inflight.clear()
            self._ready.clear()
            self._post(self._on_stopped)

    def _run(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        first_attempt = True
        down_logged = False
        while True:
            self._drain_requests()
            if self._close_deadline is not None:
                return
            try:
                client = self._connect()
            except SmppAuthError as exc:
                if first_attempt:
                    self._log.error("smpp_bind_refused", status=exc.status)
                    self._post(self._settle, self._first_outcome, exc, None)
                    return
                reason = f"bind refused: status 0x{exc.status:02X}"
            except _LinkDown as exc:
                if self._close_deadline is not None:
                    return
                reason = str(exc)
            else:
                self._log.info("smpp_bound", queued=len(self._ready))
                if first_attempt:
                    self._post(self._settle, self._first_outcome, None, None)
                first_attempt, down_logged, delay = False, False, RECONNECT_FIRST_DELAY
                try:
                    self._serve(client)
                    return  # closed on request
                except _LinkDown as exc:
                    reason = str(exc)
                finally:
                    unacknowledged = self._hang_up(client)
                if not down_logged:
                    self._log.warning("smpp_disconnected", reason=reason,
                                      unacknowledged=unacknowledged)
                    down_logged = True
            if first_attempt:
                self._post(self._settle, self._first_outcome, None, None)
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
            select.select([self._wake_r], [], [], remaining)
            self._drain_requests()

    def _connect(self) -> smpplib.client.Client:
        config = self._config
        client = smpplib.client.Client(config.host, config.port, timeout=config.response_timeout,
                                       allow_unknown_opt_params=True)
        try:
            client.connect()
            bind = smpplib.smpp.make_pdu(
                "bind_transceiver", client=client, system_id=config.system_id,
                password=config.password, system_type=config.system_type)
            self._send(client, bind)
            deadline = self._clock() + config.response_timeout
            while True:
                if not self._wait(client, deadline - self._clock()):
                    if self._close_deadline is not None:
                        raise _LinkDown("closing")
                    if self._clock() >= deadline:
                        raise _LinkDown(f"no bind response within {config.response_timeout:g}s")
                    continue
                response = self._read(client)
                if response is not None and response.sequence == bind.sequence:
                    break
        except smpplib.exceptions.ConnectionError as exc:
            self._hang_up(client)
            raise _LinkDown(f"connect failed: {_describe(exc)}") from None
        except _LinkDown:
            self._hang_up(client)
            raise
        if response.status in AUTH_FAILURES:
            self._hang_up(client)
            raise SmppAuthError(response.status)
        if response.status != 0:
            self._hang_up(client)
            raise _LinkDown(f"bind refused: status 0x{response.status:02X}")
        self._client = client
        self._bound = True
        self._generation += 1
        self._last_heard = self._clock()
        self._enquire = None
        return client

    def _hang_up(self, client: smpplib.client.Client) -> int:
        """Close the socket and queue every unacknowledged part for resending, in order."""
        self._bound = False
        self._client = None
        # smpplib warns when closing from any state but OPEN; a dead link is routine here.
        client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN
        client.disconnect()
        unacknowledged = [part for _, part in sorted(self._inflight.items()) if part.live]
        self._inflight.clear()
        self._ready.extendleft(reversed(unacknowledged))
        return len(unacknowledged)

    def _wait(self, client: smpplib.client.Client, timeout: float) -> bool:
        """Wait for the SMSC or a request; True when a PDU is ready to read."""
        sock = client._socket  # smpplib has no public accessor; needed for select()
        readable, _, _ = select.select([sock, self._wake_r], [], [], max(0.0, timeout))
        if self._wake_r in readable:
            self._drain_requests()
        return sock in readable

    def _send(self, client: smpplib.client.Client, pdu: Any) -> None:
        try:
            client.send_pdu(pdu)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError) as exc:
            raise _LinkDown(f"send failed: {_describe(exc)}") from None

    def _read(self, client: smpplib.client.Client) -> Any:
        try:
            pdu = client.read_pdu()
        except smpplib.exceptions.ConnectionError:
            raise _LinkDown("connection closed by the SMSC") from None
        except socket.timeout:
            raise _LinkDown("incomplete PDU from the SMSC") from None
        except _UNPARSABLE as exc:
            self._log.warning("smpp_unparsable_pdu", error=str(exc))
            return None
        self._last_heard = self._clock()
        return pdu

    def _drain_requests(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request[0] == "submit":
                submission = request[1]
                self._ready.extend(_Part(submission, i) for i in range(len(submission.sms.parts)))
            elif request[0] == "close":
                self._close_deadline = request[1]
            elif request[0] == "deliver_resp":
                _, generation, sequence, status = request
                # An answer owed on a dropped connection is moot: the SMSC will redeliver.
                if self._client is not None and generation == self._generation:
                    self._respond(self._client, "deliver_sm_resp", sequence, status)

    def _respond(self, client: smpplib.client.Client, command: str, sequence: int,
                 status: int = 0) -> None:
        pdu = smpplib.smpp.make_pdu(command, client=client, status=status)
        pdu.sequence = sequence
        self._send(client, pdu)

    def _finish(self, submission: _Submission, result: list[str] | None,
                error: BaseException | None) -> None:
        if not submission.settled:
            submission.settled = True
            self._post(self._settle, submission.future, result, error)

    def _serve(self, client: smpplib.client.Client) -> None:
        """Run one bound session until closed on request (returns) or the link dies (raises)."""
        while True:
            now = self._clock()
            if self._close_deadline is not None and (
                    now >= self._close_deadline
                    or not any(part.live for part in [*self._ready, *self._inflight.values()])):
                self._unbind(client)
                return
            self._send_due(client, now)
            if self._wait(client, self._next_timeout(now)):
                pdu = self._read(client)
                if pdu is not None:
                    self._dispatch(client, pdu)
            self._check_deadlines(client, self._clock())

    def _send_due(self, client: smpplib.client.Client, now: float) -> None:
        config = self._config
        while self._ready and len(self._inflight) < config.window:
            if now < self._throttled_until or now < self._next_slot:
                return
            part = self._ready.popleft()
            if not part.live:
                continue
            submission = part.submission
            pdu = smpplib.smpp.make_pdu(
                "submit_sm", client=client,
                source_addr_ton=config.source_addr_ton, source_addr_npi=config.source_addr_npi,
                source_addr=config.source_addr,
                dest_addr_ton=1, dest_addr_npi=1,  # international, E.164
                destination_addr=submission.destination.lstrip("+"),
                esm_class=submission.sms.esm_class, data_coding=submission.sms.data_coding,
                registered_delivery=1 if config.registered_delivery else 0,
                short_message=submission.sms.parts[part.index])
            part.sent_at = now
            self._inflight[pdu.sequence] = part  # registered before sending: no lost answer
            self._next_slot = max(self._next_slot, now) + 1.0 / config.max_per_second
            self._send(client, pdu)

    def _next_timeout(self, now: float) -> float:
        config = self._config
        deadlines = [now + 1.0]
        if self._ready and len(self._inflight) < config.window:
            deadlines.append(max(self._next_slot, self._throttled_until))
        if self._inflight:
            oldest = min(part.sent_at for part in self._inflight.values())
            deadlines.append(oldest + config.response_timeout)
        if self._enquire is None:
            deadlines.append(self._last_heard + config.enquire_link_interval)
        else:
            deadlines.append(self._enquire[1] + config.response_timeout)
        if self._close_deadline is not None:
            deadlines.append(self._close_deadline)
        return min(deadlines) - now

    def _check_deadlines(self, client: smpplib.client.Client, now: float) -> None:
        config = self._config
        if self._inflight:
            oldest = min(part.sent_at for part in self._inflight.values())
            if now - oldest > config.response_timeout:
                raise _LinkDown(f"no submit_sm_resp within {config.response_timeout:g}s")
        if self._enquire is not None:
            if now - self._enquire[1] > config.response_timeout:
                raise _LinkDown(f"no enquire_link_resp within {config.response_timeout:g}s")
        elif now - self._last_heard >= config.enquire_link_interval:
            pdu = smpplib.smpp.make_pdu("enquire_link", client=client)
            self._enquire = (pdu.sequence, now)
            self._send(client, pdu)

    def _dispatch(self, client: smpplib.client.Client, pdu: Any) -> None:
        command = pdu.command
        if command in ("submit_sm_resp", "generic_nack") and pdu.sequence in self._inflight:
            self._submit_answered(self._inflight.pop(pdu.sequence), pdu)
        elif command == "deliver_sm":
            self._deliver(client, pdu)
        elif command == "enquire_link":
            self._respond(client, "enquire_link_resp", pdu.sequence)
        elif command in ("enquire_link_resp", "generic_nack") and (
                self._enquire is not None and pdu.sequence == self._enquire[0]):
            self._enquire = None
        elif command == "unbind":
            self._respond(client, "unbind_resp", pdu.sequence)
            raise _LinkDown("the SMSC unbound")
        elif pdu.is_request() and command != "alert_notification":  # alerts take no answer
            self._respond(client, "generic_nack", pdu.sequence, STATUS_INVALID_COMMAND)
        else:
            self._log.debug("smpp_unexpected_pdu", command=command, sequence=pdu.sequence)

    def _submit_answered(self, part: _Part, pdu: Any) -> None:
        status = pdu.status
        submission = part.submission
        if status == 0:
            self._throttle_delay, self._throttle_logged = THROTTLE_FIRST_DELAY, False
            submission.message_ids[part.index] = _text(getattr(pdu, "message_id", b""))
            if None not in submission.message_ids:
                self._finish(submission, list(submission.message_ids), None)
        elif status in RETRY_LATER:
            if part.live:
                self._ready.appendleft(part)
            # Parts sent before the current pause began are the same wave: one backoff step.
            if part.sent_at >= self._throttle_started:
                now = self._clock()
                self._throttle_started = now
                self._throttled_until = now + self._throttle_delay
                if not self._throttle_logged:
                    self._log.warning("smpp_throttled", status=f"0x{status:02X}",
                                      backoff=self._throttle_delay)
                    self._throttle_logged = True
                self._throttle_delay = min(self._throttle_delay * 2, THROTTLE_MAX_DELAY)
        elif part.live:
            self._log.warning("smpp_submit_rejected", status=f"0x{status:02X}",
                              customer_number=mask_number(submission.destination),
                              part=part.index + 1, parts=len(submission.sms.parts))
            self._finish(submission, None, SubmitRejected(status))

    def _deliver(self, client: smpplib.client.Client, pdu: Any) -> None:
        """Hand a receipt or MO to its handler on the loop; answer once the handler is done."""
        octets = pdu.short_message or getattr(pdu, "message_payload", None) or b""
        esm_class = pdu.esm_class or 0
        item: DeliveryReceipt | MobileOriginated
        handler: Callable[[Any], Awaitable[None]]
        if esm_class & 0x3C in RECEIPT_TYPES:
            item = parse_receipt(octets.decode("latin-1"), _text(pdu.receipted_message_id),
                                 pdu.message_state)
            handler, kind = self._on_receipt, "receipt"
        elif esm_class & 0x3C == 0:
            text = decode_parts(pdu.data_coding or 0, esm_class, [octets])
            item = MobileOriginated(_text(pdu.source_addr), _text(pdu.destination_addr), text)
            handler, kind = self._on_mobile_originated, "mobile_originated"
        else:  # SME acknowledgements: nothing here asks for them
            self._respond(client, "deliver_sm_resp", pdu.sequence)
            return
        assert self._loop is not None
        generation, sequence = self._generation, pdu.sequence
        try:
            done = asyncio.run_coroutine_threadsafe(handler(item), self._loop)
        except Exception:
            self._log.exception("smpp_handler_failed", kind=kind)
            self._respond(client, "deliver_sm_resp", sequence, STATUS_SYSTEM_ERROR)
            return
        done.add_done_callback(lambda d: self._handled(d, generation, sequence, kind))

    def _unbind(self, client: smpplib.client.Client) -> None:
        """Say goodbye politely, but never wait long for an answer."""
        deadline = self._clock() + min(1.0, self._config.response_timeout)
        try:
            self._send(client, smpplib.smpp.make_pdu("unbind", client=client))
            while (remaining := deadline - self._clock()) > 0:
                if self._wait(client, remaining):
                    pdu = self._read(client)
                    if pdu is not None and pdu.command == "unbind_resp":
                        break
        except _LinkDown:
            pass
        self._log.info("smpp_closed")
