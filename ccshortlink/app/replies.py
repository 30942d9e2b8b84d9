"""What the SMSC sends us: delivery receipts matched to their SMS, and customers' replies."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

from ccshortlink.app.batching import LINGER, GroupWriter
from ccshortlink.app.dbfaults import Outage, until_stored
from ccshortlink.app.ports import Log, Receipt, Reply, ReplyStore
from ccshortlink.config.settings import SmsConfig
from ccshortlink.core.describe import describe
from ccshortlink.core.policy import NumberRejected, PolicyConfig, normalise_number
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.records import ReceiptRecord, ReplyRecord, SmsDraft
from ccshortlink.core.replytexts import ReplyTexts
from ccshortlink.core.replywords import ANSWERS, classify_reply, may_answer
from ccshortlink.core.sms import encode_sms
from ccshortlink.core.vocab import ReplyKind, SmsKind

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
                 on_delivered: Callable[[], None] = lambda: None,
                 texts: Callable[[], ReplyTexts | None] = lambda: None,
                 on_queued: Callable[[int], None] = lambda count: None) -> None:
        self.store = store
        self.sms = sms
        self.policy = policy
        self.ids_stored = ids_stored  # the outbox's: message ids answered so far are stored
        self.stop = stop
        self.clock = clock
        self.log = log
        self.on_delivered = on_delivered
        self.texts = texts  # the answers in force now (reloaded on SIGHUP); None: no answers
        self.on_queued = on_queued  # an answer is in the outbox: count it, wake the outbox
        # Receipts come in bursts of one per part: they share commits under load.
        self.receipts = GroupWriter(store.record_receipts, linger=LINGER)
        self.outages = {what: Outage(log, what, store.is_fault)
                        for what in ("receipts", "opt_out", "reply")}

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
        """Every reply is recorded; an opt-out word ends SMS to the number, an opt-in word
        allows them again, a help word asks for the hotline. Those three get one answer
        (sent at once, quiet hours or not), at most one per number per hour; other text none."""
        sms = self.sms
        kind = classify_reply(message.text, opt_out_words=sms.opt_out_words,
                              opt_in_words=sms.opt_in_words, help_words=sms.carrier.help_words)
        number = normalise_number(message.source_addr, self.policy)
        e164 = message.source_addr if isinstance(number, NumberRejected) else number.e164
        region = "" if isinstance(number, NumberRejected) else number.region
        customer = mask_number(e164)
        now = self.clock()
        answer_kind = ANSWERS.get(kind)
        answer = None if answer_kind is None else self._answer(answer_kind, region, now)
        reply = ReplyRecord(e164, message.text, kind, now)
        try:
            result = await until_stored(
                lambda: self.store.record_reply(reply, answer, answer_kind,
                                                lambda last: may_answer(last, now)),
                self.outages["reply"], self.stop, HANDLER_DB_WAIT)
        except Exception:
            self.log.error("opt_out_not_stored" if kind in (ReplyKind.OPT_OUT, ReplyKind.OPT_IN)
                           else "sms_reply_not_stored", customer=customer, kind=kind,
                           reason="the SMSC is answered with an error and delivers it again")
            raise
        if kind == ReplyKind.OTHER:  # recorded for trace, no answer: never a loop
            self.log.info("sms_reply_ignored", customer=customer, chars=len(message.text))
        elif kind == ReplyKind.HELP:
            self.log.info("sms_reply_help", customer=customer)
        else:
            self.log.info("opt_out_added" if kind == ReplyKind.OPT_OUT else "opt_out_removed",
                          customer=customer, changed=result.changed)
        if result.sms_id is not None:
            self.log.info("sms_reply_answered", customer=customer, kind=answer_kind,
                          sms_id=result.sms_id)
            self.on_queued(1)
        elif result.not_answered:
            self.log.info("sms_reply_not_answered", customer=customer, kind=kind,
                          reason=result.not_answered)

    def _answer(self, kind: SmsKind, region: str, now: float) -> SmsDraft | None:
        """The answer encoded for the outbox, due now: quiet hours hold cards, not this."""
        texts = self.texts()
        if texts is None:
            return None
        try:
            text = texts.render(kind, texts.language_for(kind, region))
        except Exception as exc:  # checked at start; the reply is recorded all the same
            self.log.error("sms_reply_text_failed", kind=kind, error=describe(exc))
            return None
        if not text:
            return None
        encoded = encode_sms(text, secrets.randbelow(0x10000))
        return SmsDraft(text=text, data_coding=encoded.data_coding, esm_class=encoded.esm_class,
                        parts=encoded.parts, not_before=now,
                        expires_at=now + self.sms.expire_hours * 3600)
