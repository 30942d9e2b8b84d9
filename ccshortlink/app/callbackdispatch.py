"""Places waiting call-backs when their agent is free and follows each through its events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from ccshortlink.app.callbacks import CallbackDeps, channels_on, extensions_on
from ccshortlink.app.ports import Gauge, OriginateUnconfirmed, PbxActions, PbxUnavailable
from ccshortlink.core.callbacks import (
    FINAL,
    RETRIED_REASONS,
    CallbackCalls,
    CallbackRecord,
    Refusal,
    Step,
    callback_of_action,
    has_expired,
    hours_refusal,
    may_place,
    originate_fields,
)
from ccshortlink.core.privacy import mask_number
from ccshortlink.core.vocab import CallbackState, Presence

POLL = 1.0  # s between looks at the queue when nothing wakes the dispatcher
LEASE = 60.0  # s a call-back in flight stays ours without a renewal (several daemons)
SWEEP = 30.0  # s between looks for call-backs a dead daemon left in flight
BUSY_RETRY = 30.0  # s before a call-back whose agent's phone was busy is tried again
CONNECTED_MAX = 4 * 3600.0  # s: a call-back talking longer than this lost its Hangup
_STEP_EVENTS = {CallbackState.CALLING_CUSTOMER: "callback_agent_answered",
                CallbackState.CONNECTED: "callback_connected",
                CallbackState.DONE: "callback_ended",
                CallbackState.CUSTOMER_MISSED: "callback_ended",
                CallbackState.AGENT_MISSED: "callback_ended",
                CallbackState.FAILED: "callback_failed",
                CallbackState.EXPIRED: "callback_expired"}
T = TypeVar("T")
CallbackMarker = Callable[[str, str], None]  # (pbx, linkedid): a call-back's own call


class CallbackDispatcher:
    """One per daemon: the queue in the database, the calls it placed in memory."""

    def __init__(self, deps: CallbackDeps, pbx: PbxActions, *, waiting: Gauge,
                 mark_callback: CallbackMarker, owner: str, hotline: str = "") -> None:
        self.deps = deps
        self.hotline = hotline  # [web] hotline: the caller ID when [callback] caller_id is ""
        self.pbx = pbx
        self.waiting = waiting
        self.mark_callback = mark_callback
        self.owner = owner  # names this daemon in the leases of the call-backs it follows
        self.calls = CallbackCalls()
        self._pbx_of: dict[int, str] = {}  # call-backs placed here, in flight: on which PBX
        self._since: dict[int, tuple[CallbackState, float]] = {}  # the state, since when
        self._steps: asyncio.Queue[Step] = asyncio.Queue()
        self._woken = asyncio.Event()
        deps.wake = self._woken.set

    # --- on the loop, for every AMI event ----------------------------------------------

    def on_event(self, pbx: str, event: Mapping[str, str]) -> None:
        """Presence, and the steps of our call-backs; must stay fast (no I/O)."""
        if self.deps.presence.on_event(pbx, event) == Presence.FREE:
            self._woken.set()
        if event.get("Event") == "OriginateResponse" and event.get("Response") == "Success" \
                and callback_of_action(event.get("ActionID", "")) is not None:
            # Whichever daemon placed it (each PBX tells every session): the tracker must not
            # send a card for a call-back's own call. Its Linkedid is the agent channel's id.
            self.mark_callback(pbx, event.get("Uniqueid", ""))
        if not self._pbx_of:
            return
        step = self.calls.on_event(event, self.deps.clock())
        if step is None:
            return
        self._steps.put_nowait(step)
        self._woken.set()

    def on_pbx_state(self, pbx: str, up: bool) -> None:
        if not up:
            self.deps.presence.forget(pbx)
        else:
            self._woken.set()

    # --- the task ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        deps = self.deps
        await self._close_abandoned(starting=True)
        swept = deps.clock()
        while not stop.is_set():
            self._woken.clear()
            await self._faulty(self._record_steps())
            await self._faulty(self._tick())
            if deps.clock() - swept >= SWEEP:
                swept = deps.clock()
                await self._close_abandoned(starting=False)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL):
                    await self._woken.wait()
        await self._faulty(self._record_steps())

    async def _close_abandoned(self, *, starting: bool) -> None:
        """In flight, but no daemon follows them any more (this one restarted, or another
        one's lease ran out): failed."""
        deps = self.deps
        for callback_id in await self._faulty(deps.store.close_abandoned_callbacks(
                deps.clock(), starting=starting)) or []:
            deps.log.warning("callback_failed", callback_id=callback_id, reason="daemon_restart")
            deps.outcomes(CallbackState.FAILED).inc()

    async def _faulty(self, work: Awaitable[T]) -> T | None:
        """A database fault is logged, and the next round tries again."""
        try:
            return await work
        except Exception as exc:
            if not self.deps.store.is_fault(exc):
                raise
            self.deps.log.warning("callback_store_failed", error=str(exc))
            return None

    async def _tick(self) -> None:
        deps = self.deps
        now = deps.clock()
        self._time_out(now)
        await self._record_steps()
        if self._pbx_of:
            await deps.store.renew_callback_leases(self.owner, now + LEASE)
        # A read each second; a write only when there is something to write.
        queue = await deps.store.callback_queue()
        max_wait = deps.config.max_wait_minutes
        if any(has_expired(r.requested_at, now, max_wait) for r in queue.waiting):
            for record in await deps.store.expire_callbacks(now, max_wait):
                self._log_step(record, CallbackState.EXPIRED, "max_wait")
            queue = await deps.store.callback_queue()
        self.waiting.set(len(queue.waiting))
        taken = set(queue.agents_in_flight)
        for record in queue.waiting:
            if record.agent_id in taken:
                continue
            taken.add(record.agent_id)  # the oldest waits first, the others behind it
            await self._place(record)

    async def _place(self, record: CallbackRecord) -> None:
        deps = self.deps
        agent = deps.agents().by_id(record.agent_id)
        extensions = extensions_on(agent, record.pbx) if agent is not None else []
        # No bare extension there: its own channel name (PJSIP/desk-ann) is rung as it is.
        channels = channels_on(agent, record.pbx) if agent is not None and not extensions \
            else []
        now = deps.clock()
        if record.opens_at is not None and record.opens_at > now:
            return  # the agent's phone was busy a moment ago: not rung again so soon
        if not extensions and not channels:  # the agent left, or has nothing on that PBX
            if await self._claim(record, now):
                await self._finish(record, CallbackState.FAILED, "no_agent_extension")
            return
        assert agent is not None
        # Judged at the request, but it waited: the agent's hours may be over by now.
        closed = hours_refusal(deps.hours_of(agent), now, deps.zone)
        if closed is not None:
            if await deps.store.refuse_callback(record.id, now, closed):
                self._refused(record, closed)
            return
        if not may_place(deps.presence_on(agent, record.pbx), self.pbx.is_up(record.pbx)):
            return
        if not await self._claim(record, now):
            return  # another daemon placed it, the agent took another call-back, or refused
        fields = originate_fields(
            callback_id=record.id, extension=extensions[0] if extensions else "",
            channel=channels[0] if channels else "", number=record.customer_number,
            agent_channel=deps.config.agent_channel,
            customer_context=deps.config.customer_context,
            customer_exten=deps.config.customer_exten,
            caller_id=deps.config.caller_id or self.hotline,
            ring_agent_seconds=deps.config.ring_agent_seconds)
        self.calls.placed(record.id)
        self._pbx_of[record.id] = record.pbx
        self._since[record.id] = (CallbackState.CALLING_AGENT, now)
        refused: str | None = None
        unconfirmed: str | None = None
        try:
            refused = await self.pbx.originate(record.pbx, fields)
        except PbxUnavailable as exc:  # nothing was sent: it waits for the link
            self._forget(record.id)
            await deps.store.unclaim_callback(record.id)
            deps.log.info("callback_waiting", callback_id=record.id, reason=str(exc))
            return
        except OriginateUnconfirmed as exc:
            # Sent: the agent's phone may ring. Placing it again would ring it twice; its
            # OriginateResponse (told to every session, a reconnected one too) or the
            # calling_agent bound in _time_out settles it.
            unconfirmed = str(exc)
        if refused is not None:
            self._forget(record.id)
            if await deps.store.record_callback_step(record.id, CallbackState.FAILED, now,
                                                     reason="pbx_refused"):
                deps.log.warning("callback_failed", callback_id=record.id,
                                 agent_id=record.agent_id, reason="pbx_refused", message=refused)
                deps.outcomes(CallbackState.FAILED).inc()
            return
        deps.log.info("callback_placed", callback_id=record.id, agent_id=record.agent_id,
                      pbx=record.pbx, channel=fields["Channel"],
                      customer=mask_number(record.customer_number), unconfirmed=unconfirmed)

    async def _claim(self, record: CallbackRecord, now: float) -> bool:
        claim = await self.deps.store.claim_callback(record.id, now, owner=self.owner,
                                                     lease_until=now + LEASE)
        if claim.refusal is not None:  # the link was revoked or expired, the number opted out
            self._refused(record, claim.refusal)
        return claim.ours

    def _refused(self, record: CallbackRecord, refusal: Refusal) -> None:
        self.deps.log.info("callback_refused", callback_id=record.id, agent_id=record.agent_id,
                           pbx=record.pbx, customer=mask_number(record.customer_number),
                           reason=refusal.reason, opens_at=refusal.opens_at)
        self.deps.outcomes(CallbackState.REFUSED).inc()

    def _time_out(self, now: float) -> None:
        """Calls whose next event never came (the PBX's link dropped meanwhile, say)."""
        config = self.deps.config
        bounds = {CallbackState.CALLING_AGENT: config.ring_agent_seconds + 30.0,
                  CallbackState.CALLING_CUSTOMER: config.ring_customer_seconds + 60.0,
                  CallbackState.CONNECTED: CONNECTED_MAX}
        for callback_id, (state, since) in list(self._since.items()):
            if now - since > bounds.get(state, CONNECTED_MAX):
                self.calls.drop(callback_id)
                final = CallbackState.FAILED if state == CallbackState.CALLING_AGENT \
                    else CallbackState.CUSTOMER_MISSED if state == CallbackState.CALLING_CUSTOMER \
                    else CallbackState.DONE
                self._steps.put_nowait(Step(callback_id, final, "no_event_in_time"))

    async def _record_steps(self) -> None:
        while not self._steps.empty():
            step = self._steps.get_nowait()
            now = self.deps.clock()
            if step.state in (CallbackState.AGENT_MISSED, CallbackState.FAILED) \
                    and step.reason in RETRIED_REASONS and await self._requeue(step, now):
                continue
            changed = await self.deps.store.record_callback_step(
                step.callback_id, step.state, now, reason=step.reason,
                talk_seconds=step.talk_seconds)
            if step.state in FINAL:
                self._forget(step.callback_id)
            elif step.callback_id in self._since:
                self._since[step.callback_id] = (step.state, now)
            if changed:
                self._log_id(step.callback_id, step.state, step.reason, step.talk_seconds)
            if step.state in FINAL and changed:
                self.deps.outcomes(step.state).inc()

    async def _requeue(self, step: Step, now: float) -> bool:
        """Busy (after an AMI reconnect nothing says so) is not the end while the request
        may still wait: waiting again, tried after BUSY_RETRY or once presence allows."""
        deps = self.deps
        if not await deps.store.requeue_callback(
                step.callback_id, now, reason=step.reason, not_before=now + BUSY_RETRY,
                max_wait_minutes=deps.config.max_wait_minutes):
            return False
        self._forget(step.callback_id)
        deps.log.info("callback_agent_busy", callback_id=step.callback_id, reason=step.reason,
                      retry_at=now + BUSY_RETRY)
        return True

    async def _finish(self, record: CallbackRecord, state: CallbackState, reason: str) -> None:
        """Logged and counted only when this daemon's step ended it (not one that ended
        meanwhile: whoever ended it counted it)."""
        if await self.deps.store.record_callback_step(record.id, state, self.deps.clock(),
                                                      reason=reason):
            self._log_step(record, state, reason)

    def _log_step(self, record: CallbackRecord, state: CallbackState, reason: str) -> None:
        self._log_id(record.id, state, reason, None, agent_id=record.agent_id)
        self.deps.outcomes(state).inc()

    def _log_id(self, callback_id: int, state: CallbackState, reason: str,
                talk_seconds: int | None, **fields: object) -> None:
        event = _STEP_EVENTS.get(state, "callback_" + state)
        emit = self.deps.log.warning if state == CallbackState.FAILED else self.deps.log.info
        emit(event, callback_id=callback_id, state=state, reason=reason or None,
             talk_seconds=talk_seconds, **fields)

    def _forget(self, callback_id: int) -> None:
        self.calls.drop(callback_id)
        self._pbx_of.pop(callback_id, None)
        self._since.pop(callback_id, None)
