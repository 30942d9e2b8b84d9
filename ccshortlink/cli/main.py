"""The `ccshortlink` command: turns errors into clear messages and exit codes (78 = config)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ccshortlink import __version__
from ccshortlink.config.agents import AgentsError, load_agents
from ccshortlink.config.settings import Config, ConfigError, load_config
from ccshortlink.config.advice import check_report
from ccshortlink.ops.logs import configure_logging, get_logger
from ccshortlink.config.problems import ProblemsError
from ccshortlink.store import StoreError, is_db_fault

EXIT_CONFIG = 78
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL: a database fault that may pass (a lock, a full disk)
DEFAULT_CONFIG = "/etc/ccshortlink/ccshortlink.toml"


def _load(path: str) -> Config:
    """Config and SMS templates validated together, then the agents file: exit 78 on any."""
    config = load_config(path, render_templates=True)
    try:
        load_agents(config.agents_file)
    except AgentsError as exc:
        raise ConfigError(path, exc.problems) from None
    return config


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    agents = load_agents(config.agents_file)
    lines, warnings = check_report(config)
    print(f"{args.config}: OK ({len(agents)} agents from {config.agents_file})")
    print("\n".join(lines))
    for warning in warnings:  # exit 0 all the same: nothing here stops the daemon
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ccshortlink.daemon import Daemon, StartupError
    from ccshortlink.ops.notify import SystemdNotifier

    config = _load(args.config)
    configure_logging(config.log_level)
    log = get_logger()
    log.info("daemon_starting", version=__version__, config=str(config.path))
    for warning in check_report(config)[1]:
        log.warning("config_warning", warning=warning)
    daemon = Daemon(config, log, notifier=SystemdNotifier.from_environment())
    try:
        return asyncio.run(daemon.run())
    except StartupError as exc:
        log.error("startup_failed", reason=str(exc))
        if sys.stderr.isatty():  # off a terminal the JSON line above already says it
            print(f"ccshortlink: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _cmd_send(args: argparse.Namespace) -> int:
    from ccshortlink.app.sending import CardService
    from ccshortlink.core.links import SmsTemplates
    from ccshortlink.store import Store

    config = _load(args.config)
    configure_logging(config.log_level)
    agents = load_agents(config.agents_file)
    agent = agents.by_id(args.agent)
    if agent is None:
        print(f"ccshortlink: unknown agent {args.agent!r}", file=sys.stderr)
        return 2

    async def send() -> dict[str, object]:
        async with await Store.open(config.database_path) as store:
            templates = SmsTemplates(config.sms.templates, config.sms.default_language)
            cards = CardService(store=store, config=config, agents=lambda: agents,
                                templates=lambda: templates, clock=time.time, log=get_logger())
            # The running daemon's outbox picks the row up within a second.
            return (await cards.send(agent, args.to, trigger="cli")).as_dict()

    result = asyncio.run(send())
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["status"] in ("queued", "deferred") else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from ccshortlink.peers.demo import run_demo

    return asyncio.run(run_demo(port=args.port, exit_after=args.exit_after))


def _cmd_trace(args: argparse.Namespace) -> int:
    from ccshortlink.store.reports import Reports
    from ccshortlink.cli.reportview import render_trace, trace_json

    config = load_config(args.config)  # a broken agents file must not stop an investigation
    zone = ZoneInfo(config.policy.timezone)
    with Reports.open(config.database_path) as reports:
        trace = reports.trace(args.query, config.policy, time.time())
    if trace is None:
        print(f"ccshortlink: nothing recorded for {args.query!r}", file=sys.stderr)
        return 1
    print(_json(trace_json(trace, zone)) if args.json else render_trace(trace, zone))
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from ccshortlink.core.policy import day_start
    from ccshortlink.store.reports import Reports
    from ccshortlink.cli.reportview import render_stats, stats_json

    config = load_config(args.config)
    zone = ZoneInfo(config.policy.timezone)
    try:
        names = {agent.id: agent.name for agent in load_agents(config.agents_file).agents}
    except AgentsError:
        names = {}  # figures by CS ID still make sense without the names
    now = time.time()
    today = day_start(now, config.policy.timezone)
    week = day_start(now - 6 * 86400, config.policy.timezone)  # today and the 6 days before
    with Reports.open(config.database_path) as reports:
        periods = [("today", today, reports.stats(today)), ("7_days", week, reports.stats(week))]
    print(_json(stats_json(periods, names, zone)) if args.json
          else render_stats(periods, names, zone))
    return 0


def _cmd_agents(args: argparse.Namespace) -> int:
    from ccshortlink.cli.reportview import table

    config = load_config(args.config)
    try:
        agents = load_agents(config.agents_file)
    except AgentsError as exc:
        print(f"ccshortlink: agents file {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(_json([{"id": a.id, "name": a.name, "extensions": list(a.extensions),
                      "phone": a.phone, "title": a.title, "language": a.language}
                     for a in agents.agents]))
        return 0
    rows = [[a.id, a.name, ",".join(a.extensions), a.phone] for a in agents.agents]
    print("\n".join(table(["CS ID", "name", "extensions", "phone"], rows, figures=False)))
    print(f"{len(agents)} agents in {config.agents_file}: OK", file=sys.stderr)
    return 0


def _cmd_opt_out(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ccshortlink.core.policy import NumberRejected, normalise_number
    from ccshortlink.store import Store

    config = load_config(args.config)
    number = ""
    if args.action != "list":
        # Any valid number, landlines included: the list is about who must not be texted.
        found = normalise_number(args.number, replace(config.policy, mobile_only=False))
        if isinstance(found, NumberRejected):
            print(f"ccshortlink: {args.number!r}: {found.reason}", file=sys.stderr)
            return 2
        number = found.e164

    async def apply() -> list[tuple[str, str, float]] | bool:
        async with await Store.open(config.database_path) as store:
            if args.action == "list":
                return await store.opt_outs()
            return await store.set_opt_out(number, args.action == "add", "operator", time.time())

    result = asyncio.run(apply())
    if isinstance(result, list):
        zone = ZoneInfo(config.policy.timezone)
        entries = [(n, source, datetime.fromtimestamp(at, zone)) for n, source, at in result]
        if args.json:
            print(_json([{"customer_number": n, "source": source, "at": at.isoformat()}
                         for n, source, at in entries]))
        elif not entries:
            print("the do-not-send list is empty", file=sys.stderr)
        else:
            print("\n".join(f"{n}\t{at:%Y-%m-%d %H:%M}\t{source}" for n, source, at in entries))
        return 0
    state = {("add", True): "added to", ("add", False): "already on",
             ("remove", True): "removed from", ("remove", False): "was not on"}
    print(f"{number} {state[(args.action, result)]} the do-not-send list")
    return 0


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


class _CommandListFormatter(argparse.HelpFormatter):
    """One line per command in `ccshortlink --help`, check-config's too.

    argparse measures subcommand names two columns short of where it prints them, so the
    longest name would push its summary onto a line of its own.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        self._action_max_length = len("    check-config")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccshortlink",
        description="Text each contact-center caller a short link to the agent they spoke with.",
        formatter_class=_CommandListFormatter)
    parser.add_argument("--version", action="version", version=f"ccshortlink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, summary: str, detail: str = "") -> argparse.ArgumentParser:
        """A subcommand: one line in the command list, that line and `detail` in its --help."""
        text = f"{summary[0].upper()}{summary[1:]}. {detail}".strip()
        made: argparse.ArgumentParser = parent.add_parser(name, help=summary, description=text)
        return made

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                       help=f"configuration file (default {DEFAULT_CONFIG})")
        return p

    with_config(command(sub, "run", "run the daemon",
                        "Watch calls on AMI, text each customer a link to the agent's card over "
                        "SMPP, and serve the cards. Exits 78 when a file is unusable.")
                ).set_defaults(func=_cmd_run)
    with_config(command(sub, "check-config", "validate the configuration and agents file",
                "Also renders each SMS template with a typical agent and link and shows its "
                "parts and encoding; warns about example secrets, an unwritable database "
                "folder and links that are not https. Exit 0 = usable, 78 = not.")
                ).set_defaults(func=_cmd_check_config)
    send = with_config(command(sub, "send", "send an agent's card to a number now",
                          "The running daemon's outbox sends it within a second."))
    send.add_argument("--agent", required=True, help="the agent's CS ID")
    send.add_argument("--to", required=True, help="the customer's number")
    send.set_defaults(func=_cmd_send)
    demo = command(sub, "demo", "run the whole path on one machine, no PBX or SMSC needed")
    demo.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    demo.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                      help="stop by itself after this many seconds")
    demo.set_defaults(func=_cmd_demo)

    def with_json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--json", action="store_true", help="JSON for tools instead of text")
        return with_config(p)

    trace = with_json(command(
        sub, "trace", "show the story of a number, a link code or a call",
        "Every decision, SMS, receipt and visit, oldest first."))
    trace.add_argument("query", metavar="NUMBER|CODE|LINKEDID")
    trace.set_defaults(func=_cmd_trace)
    with_json(command(sub, "stats", "show figures for today and the last 7 days, per agent")
              ).set_defaults(func=_cmd_stats)
    with_json(command(sub, "agents", "list the agents and validate the agents file")
              ).set_defaults(func=_cmd_agents)
    opt_out = command(sub, "opt-out", "list, add or remove numbers on the do-not-send list")
    actions = opt_out.add_subparsers(dest="action", required=True)
    with_json(command(actions, "list", "list the numbers that are never texted")
              ).set_defaults(func=_cmd_opt_out)
    for action, text in (("add", "never text NUMBER again"), ("remove", "text NUMBER again")):
        change = with_config(command(actions, action, text))
        change.add_argument("number", metavar="NUMBER")
        change.set_defaults(func=_cmd_opt_out)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"ccshortlink: configuration error in {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"ccshortlink: database error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ProblemsError as exc:  # the agents file, read by a command after the config
        print(f"ccshortlink: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if not is_db_fault(exc):
            raise
        # Locked by another process or a full disk: nothing was changed, try again later.
        print(f"ccshortlink: database unavailable ({exc}): nothing was changed, try again",
              file=sys.stderr)
        return EXIT_TEMPFAIL


if __name__ == "__main__":
    raise SystemExit(main())
