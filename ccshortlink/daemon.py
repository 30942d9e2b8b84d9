"""Wires every part together and runs them: the only place that knows them all."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from aiohttp import web

from ccshortlink.config.agents import AgentDirectory, AgentsError, load_agents
from ccshortlink.ami.client import AmiAuthError, AmiClient, AmiEvent
from ccshortlink.app.batching import GroupWriter
from ccshortlink.core.calls import (
    AgentLookup,
    CallClosed,
    CallEnded,
    CallTracker,
    Outcome,
    default_agent_lookup,
)
from ccshortlink.app.sending import CardService
from ccshortlink.config.settings import Config, ConfigError, load_config
from ccshortlink.app.dbfaults import Outage, until_stored
from ccshortlink.app.dbwatch import DbWatch
from ccshortlink.app.decider import Decider
from ccshortlink.core.links import SmsTemplates
from ccshortlink.ops.logs import Logger, mask_number
from ccshortlink.ops.metrics import Metrics
from ccshortlink.ops.notify import SystemdNotifier
from ccshortlink.app.outbox import Outbox
from ccshortlink.core.policy import NumberRejected, normalise_number
from ccshortlink.core.retention import RetentionSchedule, anonymise_number
from ccshortlink.smpp.client import DeliveryReceipt, MobileOriginated, SmppAuthError, SmppClient
from ccshortlink.store import ReceiptRecord, Store
from ccshortlink.web.app import make_app

EXIT_OK = 0
EXIT_CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus keeps it from looping
HOUSEKEEPING_INTERVAL = 30.0
RECEIPT_WAIT_TRIES = 20
CHECKPOINT_INTERVAL = 1.0
# s a receipt or an opt-out reply is retried while the database fails; then deliver_sm is
# answered with an error, so the SMSC delivers it again later (both writes are idempotent).
HANDLER_DB_WAIT = 20.0


class StartupError(Exception):
    """A configuration-class failure found while starting (bad credentials, bad agents file)."""


@dataclass
class Live:
    """What changes at run time: reloaded on SIGHUP, read through callables."""

    agents: AgentDirectory
    templates: SmsTemplates
    ami_up: bool = False
    db_ok: bool = True
    stopping: bool = False
    outcomes: asyncio.Queue[Outcome] = field(default_factory=asyncio.Queue)


class Daemon:
    """ccshortlink run: AMI → tracker → cards → outbox → SMPP, and the web server."""

    def __init__(self, config: Config, log: Logger, *, clock: Callable[[], float] = time.time,
                 notifier: SystemdNotifier | None = None) -> None:
        self.config = config
        self.log = log
        self.clock = clock
        self.notifier = notifier or SystemdNotifier(None)
        self.metrics = Metrics()
        self.decider = Decider(lambda: self.cards.handle_many, log, self.metrics)
        self.stop = asyncio.Event()
        self.web_port: int | None = None
        self.ready = asyncio.Event()
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_wanted = False

    def _load_agents(self) -> AgentDirectory:
        return load_agents(self.config.agents_file)

    @staticmethod
    def _agent_lookup(agents: AgentDirectory) -> AgentLookup:
        return default_agent_lookup(lambda ext: agents.by_extension(ext) is not None,
                                    agents.channel_map)

    def _tracker(self, agents: AgentDirectory) -> CallTracker:
        policy = self.config.policy
        return CallTracker(
            self._agent_lookup(agents),
            card_on_transfer=policy.card_on_transfer,
            feature_code_window=policy.feature_code_window_minutes * 60,
            call_timeout=policy.call_timeout_hours * 3600,
            max_channels=policy.max_live_channels)

    async def run(self) -> int:
        try:
            agents = self._load_agents()
        except AgentsError as exc:
            raise StartupError(str(exc)) from None
        self.live = Live(agents=agents, templates=SmsTemplates(
            self.config.sms.templates, self.config.sms.default_language))
        self.tracker = self._tracker(agents)
        async with await Store.open(self.config.database_path) as store:
            self.store = store
            # Receipts come in bursts of one per part: they share commits under load.
            self.receipts = GroupWriter(store.record_receipts)
            self.db_watch = DbWatch(store, self.log, lambda: self.decider.failing)
            self.outages = {what: Outage(self.log, what)
                            for what in ("receipts", "opt_out")}
            return await self._run_with_store(store)

    async def _run_with_store(self, store: Store) -> int:
        config, log = self.config, self.log
        smpp = SmppClient(config.smpp, on_receipt=self._on_receipt,
                          on_mobile_originated=self._on_mobile_originated, log=log)
        self.smpp = smpp
        try:
            await smpp.start()
        except SmppAuthError as exc:
            raise StartupError(f"SMSC refused the bind: {exc}") from None
        try:
            self.outbox = Outbox(store=store, gateway=smpp, clock=self.clock, log=log,
                                 max_attempts=config.sms.max_attempts,
                                 concurrency=config.smpp.window * 2,
                                 on_status=lambda s: self.metrics.sms.labels(status=s).inc())
            self.cards = CardService(
                store=store, config=config, agents=lambda: self.live.agents,
                templates=lambda: self.live.templates, clock=self.clock, log=log,
                on_queued=self._on_queued)
            ami = AmiClient(config.ami, self._on_ami_event, log, on_state=self._on_ami_state)
            runner = await self._start_web(store)
            try:
                return await self._serve(ami, smpp)
            finally:
                await runner.cleanup()
        finally:
            await smpp.close(timeout=5.0)

    async def _start_web(self, store: Store) -> web.AppRunner:
        app = make_app(store=store, agents=lambda: self.live.agents, web_config=self.config.web,
                       clock=self.clock, health=self.health, metrics=self.metrics,
                       send_card=self.send_card, log=self.log,
                       zone=ZoneInfo(self.config.policy.timezone))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.web.host, self.config.web.port)
        await site.start()
        sockets = runner.addresses
        self.web_port = sockets[0][1] if sockets else self.config.web.port
        self.log.info("web_listening", host=self.config.web.host, port=self.web_port,
                      public_url=self.config.web.public_url)
        return runner

    async def _serve(self, ami: AmiClient, smpp: SmppClient) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(ami.run(self.stop), name="ami")
                tasks.create_task(self.outbox.run(self.stop), name="outbox")
                tasks.create_task(self._decide_forever(), name="decisions")
                tasks.create_task(self._housekeeping(), name="housekeeping")
                tasks.create_task(self._checkpoint_forever(), name="checkpoints")
                tasks.create_task(self.db_watch.run(self.stop), name="db-watch")
                tasks.create_task(self._announce_ready(), name="ready")
                # Every task watches `stop` and winds down by itself, each within a bound.
        except* AmiAuthError as group:
            raise StartupError(f"AMI login refused: {group.exceptions[0]}") from None
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            if self._reload_task is not None:  # a reload still parsing is simply abandoned
                self._reload_task.cancel()
        left = self.tracker.calls_in_progress()
        if left:  # the next start decides them from their Cdr, or records why not
            self.log.info("calls_in_progress_at_stop", count=len(left), linkedids=left[:100])
        self.log.info("daemon_stopped")
        return EXIT_OK

    def _request_stop(self, signum: int) -> None:
        # Signal handlers only set a flag; the tasks wind down on their own.
        self.log.info("stop_requested", signal=signal.Signals(signum).name)
        self.live.stopping = True
        self.notifier.stopping()
        self.stop.set()

    async def _announce_ready(self) -> None:
        """READY=1 once the database, web server, SMSC bind and AMI login are up."""
        while not (self.live.ami_up and self.smpp.bound) and not self.stop.is_set():
            await asyncio.sleep(0.05)
        if self.stop.is_set():
            return
        self.ready.set()
        self.notifier.ready("AMI and SMPP connected")
        self.log.info("daemon_ready", agents=len(self.live.agents), web_port=self.web_port)

    # --- AMI → tracker → decisions ------------------------------------------------------

    def _on_ami_event(self, event: dict[str, str]) -> None:
        """Runs on the loop for every AMI event, in order: must stay fast and never block."""
        if self.live.stopping:
            return
        if event.get("Event") == "Newchannel" and event.get("Uniqueid") == event.get("Linkedid"):
            self.metrics.calls_seen.inc()
        if isinstance(event, AmiEvent):  # a new session may be a restarted Asterisk
            self.tracker.session(event.session)
        for outcome in self.tracker.handle(event, time.monotonic()):
            self._report_outcome(outcome)

    def _report_outcome(self, outcome: Outcome) -> None:
        """One log line per ended call or request; each goes on to be decided or recorded."""
        if isinstance(outcome, CallClosed):
            # call_evicted is the name this has always had; the others are new
            event = {"call_timeout": "call_evicted", "evicted": "channel_evicted"}.get(
                outcome.trigger, "call_closed")
            self.log.warning(event, linkedid=outcome.linkedid, trigger=outcome.trigger,
                             agent_extension=outcome.agent_extension or None,
                             customer=mask_number(outcome.customer_number) or None,
                             reason=outcome.reason)
            if not outcome.customer_number:
                return  # nothing to trace it by: the log line is its record
        elif isinstance(outcome, CallEnded):
            self.log.info("call_ended", linkedid=outcome.linkedid,
                          agent_extension=outcome.agent_extension,
                          customer=mask_number(outcome.customer_number),
                          talk_seconds=round(outcome.talk_seconds, 1),
                          decided_from=outcome.decided_from)
        else:
            self.log.info("card_requested", linkedid=outcome.linkedid,
                          agent_extension=outcome.agent_extension, trigger=outcome.trigger)
        self.metrics.calls_ended.inc()
        self.live.outcomes.put_nowait(outcome)

    def _on_ami_state(self, up: bool) -> None:
        self.live.ami_up = up

    async def _decide_forever(self) -> None:
        """Decide in event order, a batch per transaction; see Decider for database faults."""
        await self.decider.run(self.live.outcomes, self.stop)

    def _on_queued(self, count: int) -> None:
        self.metrics.sms.labels(status="queued").inc(count)
        self.outbox.wake()

    async def send_card(self, agent_id: str, number: str, trigger: str = "api") -> dict[str, object]:
        """The CRM/CLI path: a CS ID and a number, through the same policy."""
        agent = self.live.agents.by_id(agent_id)
        if agent is None:
            return {"status": "refused", "reason": f"unknown agent {agent_id!r}"}
        outcome = await self.cards.send(agent, number, trigger=trigger)
        result = outcome.as_dict()
        if outcome.status == "skipped":
            result["status"] = "refused"
        return result

    # --- SMPP callbacks ------------------------------------------------------------------

    async def _on_receipt(self, receipt: DeliveryReceipt) -> None:
        # A fast SMSC sends the receipt right behind submit_sm_resp: let the message ids that
        # the outbox is storing land first, so the first look-up finds them.
        await self.outbox.ids_stored()
        record = ReceiptRecord(receipt.message_id, receipt.state, receipt.error_code,
                               self.clock())
        for _ in range(RECEIPT_WAIT_TRIES):
            sms_id = await until_stored(lambda: self.receipts.write(record),
                                        self.outages["receipts"], self.stop, HANDLER_DB_WAIT)
            if sms_id is not None:
                break
            # A fast SMSC can send the receipt before the outbox has stored the message ids
            # that submit_sm_resp just returned: give it a moment before calling it unknown.
            await asyncio.sleep(0.1)
        if sms_id is None:
            self.log.warning("sms_receipt_unknown", message_id=receipt.message_id,
                             state=receipt.state)
            return
        event = "sms_delivered" if receipt.state.upper() == "DELIVRD" else "sms_receipt"
        self.log.info(event, sms_id=sms_id, message_id=receipt.message_id, state=receipt.state,
                      error_code=receipt.error_code)
        if receipt.state.upper() == "DELIVRD":
            self.metrics.sms.labels(status="delivered").inc()

    async def _on_mobile_originated(self, message: MobileOriginated) -> None:
        word = message.text.strip().upper()
        sms = self.config.sms
        opt_out = word in {w.upper() for w in sms.opt_out_words}
        opt_in = word in {w.upper() for w in sms.opt_in_words}
        if not (opt_out or opt_in):
            self.log.info("sms_reply_ignored", customer=mask_number(message.source_addr))
            return
        number = normalise_number(message.source_addr, self.config.policy)
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

    # --- reload, health, housekeeping ---------------------------------------------------

    def _on_sighup(self) -> None:
        # Parsing runs in a thread; a SIGHUP during a reload is answered by one more reload.
        self._reload_wanted = True
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(self._reload_while_wanted())

    async def _reload_while_wanted(self) -> None:
        while self._reload_wanted:
            self._reload_wanted = False
            await self.reload()

    async def reload(self) -> bool:
        """SIGHUP: new agents and SMS templates, or keep the old ones and say exactly why.

        Reading and checking the files runs in a worker thread (20,000 agents take seconds,
        longer than AMI waits for a ping answer); only the swap happens on the loop.
        Other settings (addresses, credentials, policy) need a restart: they are read once.
        """
        try:
            agents, templates, languages, lookup = await asyncio.to_thread(self._read_reloadable)
        except (ConfigError, AgentsError) as exc:
            self.log.error("reload_failed", problems=exc.problems,
                           reason="kept the previous agents and templates")
            return False
        except Exception as exc:  # an unreadable file must never take the daemon down
            self.log.error("reload_failed", problems=[repr(exc)],
                           reason="kept the previous agents and templates")
            return False
        self.live.agents = agents
        self.live.templates = templates
        self.tracker.agent_lookup = lookup
        self.log.info("reload_done", agents=len(agents), templates=languages)
        return True

    def _read_reloadable(self) -> tuple[AgentDirectory, SmsTemplates, list[str], AgentLookup]:
        """Runs in a worker thread: everything a reload needs, built and checked."""
        # Templates rendered in the bounded sandbox with the configured public_url, as at start.
        config = load_config(self.config.path, render_templates=True)
        agents = load_agents(config.agents_file)
        templates = SmsTemplates(config.sms.templates, config.sms.default_language)
        return agents, templates, sorted(config.sms.templates), self._agent_lookup(agents)

    def health(self) -> dict[str, str]:
        """Each component's state; `db_reason` says why the database is `failing`."""
        states = {"ami": "up" if self.live.ami_up else "down",
                  "smpp": "up" if self.smpp.bound else "down",
                  "db": "up" if self.live.db_ok else "down"}
        reason = self.db_watch.check()  # a change seen here is logged as soon as it is seen
        if reason is not None:
            states["db"], states["db_reason"] = "failing", reason
        return states

    async def _checkpoint_forever(self) -> None:
        """Keep the WAL short from a worker thread (see Store.take_over_checkpoints)."""
        await self.store.take_over_checkpoints()
        failing = False  # logged once when checkpoints start failing, once when they work
        while not self.stop.is_set():
            try:
                await self.store.checkpoint()
            except sqlite3.Error as exc:
                if not failing:
                    self.log.warning("db_checkpoint_failed", error=repr(exc),
                                     reason="tried again every second, logged once")
                failing = True
            else:
                if failing:
                    self.log.info("db_checkpoint_recovered")
                failing = False
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=CHECKPOINT_INTERVAL)
            except TimeoutError:
                pass

    async def _housekeeping(self) -> None:
        interval = self.notifier.watchdog_interval or HOUSEKEEPING_INTERVAL
        retention = RetentionSchedule(self.config.retention_days)
        while not self.stop.is_set():
            self.live.db_ok = await self.store.ping()
            # Fed while the loop runs, even with the database failing: a restart frees no
            # disk and breaks no other process's lock, and it would lose the calls kept in
            # memory for the database (see Decider). /healthz says `db: failing` instead.
            self.notifier.watchdog()
            for outcome in self.tracker.expire(time.monotonic()):  # no Cdr or Hangup came
                self._report_outcome(outcome)
            now = self.clock()
            if self.live.db_ok and retention.due(now):
                retention.done(now)  # a failing run is retried tomorrow, not every tick
                try:
                    counts = await self.store.apply_retention(retention.cutoff(now), now,
                                                              anonymise_number)
                    self.log.info("retention_done", days=retention.days, **counts)
                except sqlite3.Error as exc:
                    self.log.error("retention_failed", error=repr(exc))
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=min(interval,
                                                                     HOUSEKEEPING_INTERVAL))
            except TimeoutError:
                pass
