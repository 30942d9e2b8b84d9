"""SMPP transceiver: smpplib in one I/O thread; async submit, receipts and MO back on the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

from ccshortlink.config.settings import SmppConfig
from ccshortlink.core.sms import EncodedSms
from ccshortlink.ops.logs import Logger
from ccshortlink.smpp.link import SmppLink
from ccshortlink.smpp.mailbox import Close, Mailbox, Submit, settle
from ccshortlink.smpp.vocab import (
    DeliveryReceipt,
    MobileOriginated,
    SmppAuthError,
    SmppClosed,
    SubmitRejected,
    parse_receipt,
)
from ccshortlink.smpp.window import Submission

__all__ = [
    "DeliveryReceipt", "MobileOriginated", "SmppAuthError", "SmppClient", "SmppClosed",
    "SubmitRejected", "parse_receipt",
]


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
        self._mailbox = Mailbox()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: SmppLink | None = None
        self._thread: threading.Thread | None = None
        self._first_outcome: asyncio.Future[BaseException | None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Start the I/O thread; return once the first bind attempt is over.

        Raises SmppAuthError if the SMSC refused the credentials; after any other failure the
        thread keeps reconnecting in the background."""
        if self._thread is not None:
            raise RuntimeError("SmppClient.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._first_outcome = self._loop.create_future()
        self._stopped = self._loop.create_future()
        self._link = SmppLink(
            self._config, self._mailbox, loop=self._loop, started=self._first_outcome,
            on_stopped=self._on_stopped, on_receipt=self._on_receipt,
            on_mobile_originated=self._on_mobile_originated, log=self._log, clock=self._clock)
        self._thread = threading.Thread(target=self._link.io_main, name="smpp-io", daemon=True)
        self._thread.start()
        error = await self._first_outcome
        if error is not None:
            await asyncio.shield(self._stopped)
            raise error

    @property
    def bound(self) -> bool:
        return self._link is not None and self._link.bound

    async def submit(self, destination: str, sms: EncodedSms) -> list[str]:
        """Submit every part; return one message_id per part once all are acknowledged."""
        if self._closing or self._loop is None or self._stopped is None or self._stopped.done():
            raise SmppClosed("SMPP client is not running")
        if not sms.parts:
            raise ValueError("an SMS has at least one part")
        future: asyncio.Future[list[str]] = self._loop.create_future()
        submission = Submission(destination, sms, future, [None] * len(sms.parts))
        self._mailbox.put(Submit(submission))
        try:
            return await future
        except asyncio.CancelledError:
            submission.abandoned = True  # unsent parts are dropped by the I/O thread
            raise

    async def close(self, timeout: float = 5.0) -> None:
        """Finish in-flight submits (up to `timeout`), unbind and stop the I/O thread."""
        self._closing = True
        if self._thread is None or self._stopped is None:
            self._mailbox.close()
            return
        if not self._stopped.done():
            self._mailbox.put(Close(self._clock() + timeout))
            # A blocked connect/send/read gives up after response_timeout at worst.
            grace = timeout + self._config.response_timeout + 1.0
            try:
                await asyncio.wait_for(asyncio.shield(self._stopped), grace)
            except TimeoutError:
                self._log.warning("smpp_close_timeout", seconds=grace)
                return
        await asyncio.to_thread(self._thread.join, 1.0)
        if not self._thread.is_alive():
            self._mailbox.close()

    def _on_stopped(self) -> None:
        """Posted by the I/O thread as its last act: fail what it never saw, mark us stopped."""
        assert self._stopped is not None
        # submit() runs on this loop too, so nothing can be queued after this drain.
        while (request := self._mailbox.take()) is not None:
            if isinstance(request, Submit):
                settle(request.submission.future, None, SmppClosed("SMPP client stopped"))
        settle(self._stopped, None, None)
        if self._first_outcome is not None:
            settle(self._first_outcome, None, None)
