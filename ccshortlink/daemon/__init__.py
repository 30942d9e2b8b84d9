"""Wires every part together and runs them: the only place that knows them all."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ccshortlink.ami.client import AmiAuthError, AmiClient, AmiEvent, pbx_clients
from ccshortlink.ami.pbxs import PbxSessions
from ccshortlink.app.dbwatch import DbWatch
from ccshortlink.app.decider import STOP_GRACE, Decider
from ccshortlink.app.housekeeping import Housekeeping
from ccshortlink.app.outbox import DRAIN_TIMEOUT, Outbox
from ccshortlink.app.pbxflows import PbxFlows
from ccshortlink.app.reloading import Live, Reloader
from ccshortlink.app.replies import Replies
from ccshortlink.app.sending import CardService
from ccshortlink.app.shutdown import StopBudget
from ccshortlink.config.agents import AgentsError, load_agents
from ccshortlink.config.settings import Config, smpp_share
from ccshortlink.config.sms import card_templates
from ccshortlink.config.smstexts import reply_texts
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.vocab import SmsStatus, Trigger
from ccshortlink.daemon.site import CallbackParts, build_callbacks, health, start_web
from ccshortlink.ops.logs import Logger
from ccshortlink.ops.metrics import Metrics
from ccshortlink.ops.notify import SystemdNotifier
from ccshortlink.smpp.client import DeliveryReceipt, MobileOriginated, SmppAuthError, SmppClient
from ccshortlink.store.choose import AnyStore, open_store
from ccshortlink.store.errors import is_database_error

SMPP_CLOSE = 5.0  # s at most for the unbind, within what is left of the shutdown budget
WEB_CLOSE = 10.0  # s at most for open requests and the last visits, likewise
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StartupError(Exception):
    """A configuration-class failure found while starting (bad credentials, bad agents file)."""


@dataclass
class Parts:
    """Every part of a running daemon, built in one place (`Daemon._build`)."""

    live: Live
    calls: PbxFlows  # each PBX's tracker
    smpp: SmppClient
    amis: tuple[AmiClient, ...]  # one AMI session per PBX, in [[ami]] order
    outbox: Outbox
    cards: CardService
    decider: Decider
    replies: Replies
    housekeeping: Housekeeping
    db_watch: DbWatch
    reloader: Reloader
    callbacks: CallbackParts | None = None  # [callback] on


class Daemon:
    """ccshortlink run: AMI → tracker → sending → outbox → SMPP, and the web server."""

    def __init__(self, config: Config, log: Logger, *, clock: Callable[[], float] = time.time,
                 notifier: SystemdNotifier | None = None, freeze_heap: bool = False) -> None:
        self.config = config
        self.freeze_heap = freeze_heap  # the process is the daemon's alone (`run`)
        self.log = log
        self.clock = clock
        self.notifier = notifier or SystemdNotifier(None)
        self.pbxs = tuple(pbx.name for pbx in config.pbxs)
        self.metrics = Metrics(pbxs=self.pbxs)
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.budget = StopBudget(config.stop_timeout)  # starts at the first stop signal
        self.web_port: int | None = None
        self._parts: Parts | None = None  # None: not started (or the agents failed to load)
        self._main: asyncio.Task[object] | None = None  # run()'s task, cancelled if forced
        self._forced = False
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def parts(self) -> Parts:
        if self._parts is None:
            raise RuntimeError("the daemon is not running")
        return self._parts

    async def run(self) -> int:
        """Run until stopped. Returns 0 once stopped on request, also when a second signal
        or the end of the budget forced it (what was decided is in the outbox); raises
        StartupError for a configuration-class failure at start."""
        try:
            agents = load_agents(self.config.agents_file, self.pbxs)
        except AgentsError as exc:
            raise StartupError(str(exc)) from None
        self._main = asyncio.current_task()
        try:
            async with await open_store(self.config.db) as store:
                await self._run_with_store(store, agents)
        except asyncio.CancelledError:
            if not self._forced or self._main is None:
                raise
            self._main.uncancel()  # our own forced stop, not the caller's cancellation
        finally:
            loop = asyncio.get_running_loop()
            for signum in (*STOP_SIGNALS, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            if self._deadline is not None:
                self._deadline.cancel()
            if self._parts is not None:
                self._parts.reloader.abandon()
        self.parts.calls.report_left()
        self.log.info("daemon_stopped")
        return 0

    async def _run_with_store(self, store: AnyStore, agents: AgentDirectory) -> None:
        smpp = SmppClient(smpp_share(self.config), on_receipt=self._on_receipt,
                          on_mobile_originated=self._on_reply, log=self.log)
        try:
            await smpp.start()
        except SmppAuthError as exc:
            raise StartupError(f"SMSC refused the bind: {exc}") from None
        try:
            self._parts = self._build(store, smpp, agents)
            callbacks = self._parts.callbacks
            runner = await start_web(self, store, callbacks.desk if callbacks else None)
            try:
                await self._serve(self._parts)
            finally:
                await self._bounded(runner.cleanup(), WEB_CLOSE)
        finally:
            close = self.budget.bound(SMPP_CLOSE)
            await self._bounded(smpp.close(timeout=close), close + 1.0)

    def _build(self, store: AnyStore, smpp: SmppClient, agents: AgentDirectory) -> Parts:
        """Every part, each handed what it needs: the one place that knows them all."""
        config, log, metrics = self.config, self.log, self.metrics
        live = Live(agents, card_templates(config.sms), replies=reply_texts(
            config.sms.carrier, config.sms.default_language, company=config.web.company,
            hotline=config.web.hotline))
        calls = PbxFlows.build(self.pbxs, config.policy, agents, log,
                               calls_seen=metrics.calls_seen, calls_ended=metrics.calls_ended)
        outbox = Outbox(store=store, gateway=smpp, clock=self.clock, log=log,
                        max_attempts=config.sms.max_attempts,
                        concurrency=config.smpp.window * 2,
                        on_status=lambda status: metrics.sms.labels(status=status).inc())

        def queued(count: int) -> None:
            metrics.sms.labels(status=SmsStatus.QUEUED).inc(count)
            outbox.wake()

        cards = CardService(store=store, config=config, agents=lambda: live.agents,
                            templates=lambda: live.templates, clock=self.clock, log=log,
                            on_queued=queued)
        decider = Decider(lambda: cards.handle_many, log, metrics, is_fault=store.is_fault,
                          stop_grace=lambda: self.budget.for_tasks(STOP_GRACE))
        replies = Replies(store=store, sms=config.sms, policy=config.policy,
                          ids_stored=outbox.ids_stored, stop=self.stop, clock=self.clock,
                          log=log, on_delivered=metrics.sms.labels(status="delivered").inc,
                          texts=lambda: live.replies, on_queued=queued)
        housekeeping = Housekeeping(
            store=store, retention_days=config.retention_days, log=log, clock=self.clock,
            stop=self.stop, watchdog=self.notifier.watchdog,
            watchdog_interval=self.notifier.watchdog_interval, expire_calls=calls.expire,
            on_db_state=lambda ok: setattr(live, "db_ok", ok),
            is_error=is_database_error)
        amis = pbx_clients(config.pbxs, self._on_ami_event, log, on_state=self._on_ami_state)
        callbacks = build_callbacks(self, store, PbxSessions(self.pbxs, amis), calls.mark_callback)
        # The bind is the SMPP thread's own state: read whenever /metrics is scraped.
        metrics.smpp_connected.set_function(lambda: 1.0 if smpp.bound else 0.0)
        return Parts(live=live, calls=calls, smpp=smpp, amis=amis, outbox=outbox, cards=cards,
                     decider=decider, replies=replies, housekeeping=housekeeping,
                     db_watch=DbWatch(store, log, lambda: decider.failing),
                     reloader=Reloader(config.path, live, calls.trackers, log,
                                       load_agents=partial(load_agents, pbxs=self.pbxs)),
                     callbacks=callbacks)

    async def _serve(self, parts: Parts) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, parts.reloader.on_sighup)
        try:
            async with asyncio.TaskGroup() as tasks:
                for pbx, ami in zip(self.pbxs, parts.amis, strict=True):
                    tasks.create_task(ami.run(self.stop), name=f"ami-{pbx}")
                tasks.create_task(parts.outbox.run(
                    self.stop, drain_timeout=lambda: self.budget.for_tasks(DRAIN_TIMEOUT)),
                    name="outbox")
                tasks.create_task(parts.decider.run(parts.calls.outcomes, self.stop),
                                  name="decisions")
                tasks.create_task(parts.housekeeping.run(), name="housekeeping")
                tasks.create_task(parts.housekeeping.checkpoints(), name="checkpoints")
                tasks.create_task(parts.db_watch.run(self.stop), name="db-watch")
                tasks.create_task(self._announce_ready(parts), name="ready")
                if parts.callbacks is not None:
                    tasks.create_task(parts.callbacks.dispatcher.run(self.stop), name="callbacks")
                # Every task watches `stop` and winds down by itself, each within the budget.
        except* AmiAuthError as group:
            raise StartupError(f"AMI login refused: {group.exceptions[0]}") from None

    async def _bounded(self, closing: Awaitable[None], cap: float) -> None:
        """Await a closing step for at most `cap` s and never past the shutdown budget."""
        try:
            await asyncio.wait_for(closing, self.budget.bound(cap))
        except TimeoutError:
            if not self._forced:  # forced: nothing was meant to wait
                self.log.warning("stop_step_timeout", left=round(self.budget.left(), 1))

    def _request_stop(self, signum: int) -> None:
        # Signal handlers only set a flag; the tasks wind down on their own, within the budget.
        name = signal.Signals(signum).name
        if self.stop.is_set():  # a second signal: the operator will not wait
            self._force(name)
            return
        self.log.info("stop_requested", signal=name, budget=self.budget.total)
        self.budget.start()
        self._deadline = asyncio.get_running_loop().call_later(
            self.budget.total, self._force, "stop_timeout")
        if self._parts is not None:
            self._parts.calls.stop_deciding()
        self.notifier.stopping()
        self.stop.set()

    def _force(self, reason: str) -> None:
        """Exit at once: nothing decided is lost (it is in the outbox), an SMS in flight is
        resent by the next start."""
        if self._forced:
            return
        self.log.warning("stop_forced", reason=reason)
        self._forced = True
        self.budget.expire()
        self.stop.set()
        if self._main is not None:
            self._main.cancel()

    async def _announce_ready(self, parts: Parts) -> None:
        """READY=1 once the database, web server, SMSC bind and AMI login are up."""
        # Polled: the two states are the peers' own, and this runs once per start.
        while not (parts.live.ami_up and parts.smpp.bound) and not self.stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.stop.is_set():
            return
        if self.freeze_heap:
            # What start-up built (modules, templates, number metadata, config) lives as long
            # as the process: frozen, the collector's full passes skip it. Each pass over it
            # stopped every call for 45-75 ms at 100 calls/s; one collection now, at start.
            gc.collect()
            gc.freeze()
        self.ready.set()
        self.notifier.ready("AMI and SMPP connected")
        self.log.info("daemon_ready", agents=len(parts.live.agents), web_port=self.web_port)

    # --- what the peers and the web app call -------------------------------------------

    def _on_ami_event(self, pbx: str, event: dict[str, str]) -> None:
        """Runs on the loop for every AMI event, in order: must stay fast and never block."""
        session = event.session if isinstance(event, AmiEvent) else None
        if self.parts.callbacks is not None:  # first: it marks a call-back's own call
            self.parts.callbacks.dispatcher.on_event(pbx, event)
        self.parts.calls.on_event(pbx, event, session)

    def _on_ami_state(self, pbx: str, up: bool) -> None:
        live = self.parts.live
        live.pbx_up[pbx] = up
        live.ami_up = any(live.pbx_up.values())
        self.metrics.ami_connected.labels(pbx=pbx).set(1 if up else 0)
        if self.parts.callbacks is not None:
            self.parts.callbacks.dispatcher.on_pbx_state(pbx, up)

    # A reply may come with the bind, before the parts exist: looked up as the loop runs it.
    async def _on_receipt(self, receipt: DeliveryReceipt) -> None:
        await self.parts.replies.on_receipt(receipt)

    async def _on_reply(self, message: MobileOriginated) -> None:
        await self.parts.replies.on_reply(message)

    async def send_card(self, agent_id: str, number: str,
                        trigger: Trigger = Trigger.API) -> dict[str, object]:
        """The CRM/CLI path: a CS ID and a number, through the same policy."""
        return await self.parts.cards.send_for(agent_id, number, trigger=trigger)

    def health(self) -> dict[str, Any]:
        return health(self.pbxs, self.parts)

    async def reload(self) -> bool:
        """SIGHUP's work, awaited: new agents and SMS templates, or the old ones kept."""
        return await self.parts.reloader.reload()
