"""What the SMSC sends us: delivery receipts matched to their SMS, and STOP/START replies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ccshortlink.app.batching import GroupWriter
from ccshortlink.app.dbfaults import Outage, until_stored
from ccshortlink.app.ports import Log, Receipt, Reply, ReplyStore
from ccshortlink.config.settings import SmsConfig
from ccshortlink.core.policy import NumberRejected, PolicyConfig, normalise_number
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.records import ReceiptRecord

RECEIPT_WAIT_TRIES = 20
RECEIPT_WAIT = 0.1  # s between tries while a receipt's message id is not stored yet
# s a receipt or an opt-out reply is retried while the database fails; then deliver_sm is
# answered with an error, so the SMSC delivers it again later (both writes are idempotent).
HANDLER_DB_WAIT = 20.0


class Replies:
    """Handles the gateway's receipts and customers' replies, each stored before answered."""

    def __init__(self, *, store: ReplyStore, sms: SmsConfig, policy: PolicyConfig,
                 ids_stored: Callable[[], Awaitable[None]], stop: asyncio.Event,
                 clock: Callable[[], float], log: Log,
                 on_delivered: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.sms = sms
        self.policy = policy
        self.ids_stored = ids_stored  # the outbox's: message ids answered so far are stored
        self.stop = stop
        self.clock = clock
        self.log = log
        self.on_delivered = on_delivered
        # Receipts come in bursts of one per part: they share commits under load.
        self.receipts = GroupWriter(store.record_receipts)
        self.outages = {what: Outage(log, what, store.is_fault)
                        for what in ("receipts", "opt_out")}

    async def on_receipt(self, receipt: Receipt) -> None:
        # A fast SMSC sends the receipt right behind submit_sm_resp: let the message ids that
        # the outbox is storing land first, so the first look-up finds them.
        await self.ids_stored()
        record = ReceiptRecord(receipt.message_id, receipt.state, receipt.error_code,
                               self.clock())
        sms_id: int | None = None
        for _ in range(RECEIPT_WAIT_TRIES):
            sms_id = await until_stored(lambda: self.receipts.write(record),
                                        self.outages["receipts"], self.stop, HANDLER_DB_WAIT)
            if sms_id is not None:
                break
            # A fast SMSC can send the receipt before the outbox has stored the message ids
            # that submit_sm_resp just returned: give it a moment before calling it unknown.
            await asyncio.sleep(RECEIPT_WAIT)
        if sms_id is None:
            self.log.warning("sms_receipt_unknown", message_id=receipt.message_id,
                             state=receipt.state)
            return
        delivered = receipt.state.upper() == "DELIVRD"
        self.log.info("sms_delivered" if delivered else "sms_receipt", sms_id=sms_id,
                      message_id=receipt.message_id, state=receipt.state,
                      error_code=receipt.error_code)
        if delivered:
            self.on_delivered()

    async def on_reply(self, message: Reply) -> None:
        """STOP (or another opt-out word) ends SMS to the number; START allows them again."""
        word = message.text.strip().upper()
        opt_out = word in {w.upper() for w in self.sms.opt_out_words}
        opt_in = word in {w.upper() for w in self.sms.opt_in_words}
        if not (opt_out or opt_in):
            self.log.info("sms_reply_ignored", customer=mask_number(message.source_addr))
            return
        number = normalise_number(message.source_addr, self.policy)
        e164 = message.source_addr if isinstance(number, NumberRejected) else number.e164
        now = self.clock()
        try:
            changed = await until_stored(
                lambda: self.store.set_opt_out(e164, opt_out, "sms reply", now),
                self.outages["opt_out"], self.stop, HANDLER_DB_WAIT)
        except Exception:
            self.log.error("opt_out_not_stored", customer=mask_number(e164), opt_out=opt_out,
                           reason="the SMSC is answered with an error and delivers it again")
            raise
        self.log.info("opt_out_added" if opt_out else "opt_out_removed",
                      customer=mask_number(e164), changed=changed)
