"""deliver_sm from the SMSC: receipts and MO handed to the loop, answered once handled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from ccshortlink.ops.logs import Logger
from ccshortlink.smpp.mailbox import AnswerDeliver, Mailbox
from ccshortlink.smpp.vocab import (
    STATUS_SYSTEM_ERROR,
    DeliveryReceipt,
    MobileOriginated,
    read_deliver_sm,
)
from ccshortlink.smpp.wire import SmscConnection


class Deliveries:
    """Runs the handler of each receipt or MO on the loop; deliver_sm_resp waits for it, so an
    SMS the handler could not record is delivered again by the SMSC instead of lost."""

    def __init__(self, mailbox: Mailbox, *, loop: asyncio.AbstractEventLoop,
                 on_receipt: Callable[[DeliveryReceipt], Awaitable[None]],
                 on_mobile_originated: Callable[[MobileOriginated], Awaitable[None]],
                 log: Logger) -> None:
        self._mailbox = mailbox
        self._loop = loop
        self._on_receipt = on_receipt
        self._on_mobile_originated = on_mobile_originated
        self._log = log

    def deliver(self, connection: SmscConnection, pdu: Any, generation: int) -> None:
        """Hand a receipt or MO to its handler on the loop (I/O thread); SME acks answered now."""
        item = read_deliver_sm(pdu)
        work: Awaitable[None]
        if isinstance(item, DeliveryReceipt):
            work, kind = self._on_receipt(item), "receipt"
        elif isinstance(item, MobileOriginated):
            work, kind = self._on_mobile_originated(item), "mobile_originated"
        else:  # SME acknowledgements: nothing here asks for them
            connection.respond("deliver_sm_resp", pdu.sequence)
            return
        sequence = pdu.sequence
        try:
            done = asyncio.run_coroutine_threadsafe(_as_coroutine(work), self._loop)
        except Exception:
            self._log.exception("smpp_handler_failed", kind=kind)
            connection.respond("deliver_sm_resp", sequence, STATUS_SYSTEM_ERROR)
            return
        done.add_done_callback(lambda d: self._handled(d, generation, sequence, kind))

    def _handled(self, done: Future[None], generation: int, sequence: int, kind: str) -> None:
        """Done-callback of a receipt/MO handler, on the loop: answer deliver_sm afterwards."""
        status = 0
        error = None if done.cancelled() else done.exception()
        if done.cancelled() or error is not None:
            status = STATUS_SYSTEM_ERROR
            self._log.error("smpp_handler_failed", kind=kind, exc_info=error)
        self._mailbox.put(AnswerDeliver(generation, sequence, status))


async def _as_coroutine(work: Awaitable[None]) -> None:
    """run_coroutine_threadsafe takes a coroutine; the handlers are typed as awaitables."""
    await work
