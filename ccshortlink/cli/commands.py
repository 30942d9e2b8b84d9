"""What each `ccshortlink` command does; errors are left to main() to turn into exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from ccshortlink import __version__
from ccshortlink.cli.exits import Exit
from ccshortlink.config.advice import check_report
from ccshortlink.config.agents import AgentsError, load_agents
from ccshortlink.config.settings import Config, ConfigError, load_config
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.vocab import SendStatus, Trigger
from ccshortlink.ops.logs import configure_logging, get_logger


def load(path: str) -> tuple[Config, AgentDirectory]:
    """Config and SMS templates validated together, then the agents file: exit 78 on any."""
    config = load_config(path, render_templates=True)
    try:
        return config, load_agents(config.agents_file, [pbx.name for pbx in config.pbxs])
    except AgentsError as exc:
        raise ConfigError(path, exc.problems) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    config, agents = load(args.config)
    lines, warnings = check_report(config)
    print(f"{args.config}: OK ({len(agents)} agents from {config.agents_file})")
    if config.db.url:  # never its password
        print(f"database: PostgreSQL at {config.db.shown}")
    if len(config.pbxs) > 1:
        print("PBXs: " + ", ".join(f"{p.name} ({p.host}:{p.port})" for p in config.pbxs))
    print("\n".join(lines))
    callback = config.callback
    if callback.enabled:
        print(f"call-backs: on; ring {callback.agent_channel}, then {callback.customer_exten}"
              f" in {callback.customer_context}; hours {callback.hours or 'always'}"
              f"; the AMI user needs write = originate (see manager.conf)")
    for warning in warnings:  # exit 0 all the same: nothing here stops the daemon
        print(f"warning: {warning}", file=sys.stderr)
    return Exit.OK


def cmd_run(args: argparse.Namespace) -> int:
    from ccshortlink.daemon import Daemon, StartupError
    from ccshortlink.ops.notify import SystemdNotifier

    config, _ = load(args.config)  # the daemon reads the agents again as it starts
    configure_logging(config.log_level)
    log = get_logger()
    log.info("daemon_starting", version=__version__, config=str(config.path))
    for warning in check_report(config)[1]:
        log.warning("config_warning", warning=warning)
    daemon = Daemon(config, log, notifier=SystemdNotifier.from_environment(), freeze_heap=True)
    try:
        return asyncio.run(daemon.run())
    except StartupError as exc:
        log.error("startup_failed", reason=str(exc))
        if sys.stderr.isatty():  # off a terminal the JSON line above already says it
            print(f"ccshortlink: {exc}", file=sys.stderr)
        return Exit.CONFIG


def cmd_send(args: argparse.Namespace) -> int:
    from ccshortlink.app.sending import CardService
    from ccshortlink.config.sms import card_templates
    from ccshortlink.store.choose import open_store

    config, agents = load(args.config)
    configure_logging(config.log_level)
    agent = agents.by_id(args.agent)
    if agent is None:
        print(f"ccshortlink: unknown agent {args.agent!r}", file=sys.stderr)
        return Exit.USAGE

    async def send() -> dict[str, object]:
        async with await open_store(config.db) as store:
            templates = card_templates(config.sms)
            cards = CardService(store=store, config=config, agents=lambda: agents,
                                templates=lambda: templates, clock=time.time, log=get_logger())
            # The running daemon's outbox picks the row up within a second.
            return (await cards.send(agent, args.to, trigger=Trigger.CLI)).as_dict()

    result = asyncio.run(send())
    print(json.dumps(result, ensure_ascii=False))
    return Exit.OK if result["status"] in (SendStatus.QUEUED, SendStatus.DEFERRED) else Exit.FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from ccshortlink.peers.demo import run_demo

    return asyncio.run(run_demo(port=args.port, exit_after=args.exit_after))


def cmd_trace(args: argparse.Namespace) -> int:
    from ccshortlink.cli.reportview import render_trace, trace_json
    from ccshortlink.store.choose import open_reports

    config = load_config(args.config)  # a broken agents file must not stop an investigation
    zone = ZoneInfo(config.policy.timezone)
    with open_reports(config.db) as reports:
        trace = reports.trace(args.query, config.policy, time.time())
    if trace is None:
        print(f"ccshortlink: nothing recorded for {args.query!r}", file=sys.stderr)
        return Exit.FAILED
    print(as_json(trace_json(trace, zone)) if args.json else render_trace(trace, zone))
    return Exit.OK


def cmd_stats(args: argparse.Namespace) -> int:
    from ccshortlink.cli.reportview import render_stats, stats_json
    from ccshortlink.core.policy import day_start
    from ccshortlink.store.choose import open_reports

    config = load_config(args.config)
    zone = ZoneInfo(config.policy.timezone)
    try:
        names = {agent.id: agent.name for agent in load_agents(config.agents_file).agents}
    except AgentsError:
        names = {}  # figures by CS ID still make sense without the names
    now = time.time()
    today = day_start(now, config.policy.timezone)
    week = day_start(now - 6 * 86400, config.policy.timezone)  # today and the 6 days before
    with open_reports(config.db) as reports:
        periods = [("today", today, reports.stats(today)), ("7_days", week, reports.stats(week))]
        replies = {"today": reports.reply_counts(today), "7_days": reports.reply_counts(week)}
    print(as_json(stats_json(periods, names, zone, replies)) if args.json
          else render_stats(periods, names, zone, replies, callbacks=config.callback.enabled))
    return Exit.OK


def cmd_agents(args: argparse.Namespace) -> int:
    from ccshortlink.cli.reportview import table

    config = load_config(args.config)
    try:
        agents = load_agents(config.agents_file, [pbx.name for pbx in config.pbxs])
    except AgentsError as exc:
        print(f"ccshortlink: agents file {exc}", file=sys.stderr)
        return Exit.CONFIG
    if args.json:
        print(as_json([{"id": a.id, "name": a.name, "extensions": list(a.extensions),
                      "phone": a.phone, "title": a.title, "language": a.language}
                     for a in agents.agents]))
        return Exit.OK
    rows = [[a.id, a.name, ",".join(a.extensions), a.phone] for a in agents.agents]
    print("\n".join(table(["CS ID", "name", "extensions", "phone"], rows, figures=False)))
    print(f"{len(agents)} agents in {config.agents_file}: OK", file=sys.stderr)
    return Exit.OK


def cmd_opt_out(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ccshortlink.core.policy import NumberRejected, normalise_number
    from ccshortlink.store.choose import open_store

    config = load_config(args.config)
    number = ""
    if args.action != "list":
        # Any valid number, landlines included: the list is about who must not be texted.
        found = normalise_number(args.number, replace(config.policy, mobile_only=False))
        if isinstance(found, NumberRejected):
            print(f"ccshortlink: {args.number!r}: {found.reason}", file=sys.stderr)
            return Exit.USAGE
        number = found.e164

    async def apply() -> list[tuple[str, str, float]] | bool:
        async with await open_store(config.db) as store:
            if args.action == "list":
                return await store.opt_outs()
            return await store.set_opt_out(number, args.action == "add", "operator", time.time())

    result = asyncio.run(apply())
    if isinstance(result, list):
        zone = ZoneInfo(config.policy.timezone)
        entries = [(n, source, datetime.fromtimestamp(at, zone)) for n, source, at in result]
        if args.json:
            print(as_json([{"customer_number": n, "source": source, "at": at.isoformat()}
                         for n, source, at in entries]))
        elif not entries:
            print("the do-not-send list is empty", file=sys.stderr)
        else:
            print("\n".join(f"{n}\t{at:%Y-%m-%d %H:%M}\t{source}" for n, source, at in entries))
        return Exit.OK
    state = {("add", True): "added to", ("add", False): "already on",
             ("remove", True): "removed from", ("remove", False): "was not on"}
    print(f"{number} {state[(args.action, result)]} the do-not-send list")
    return Exit.OK


def as_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
