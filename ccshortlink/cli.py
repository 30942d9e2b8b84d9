"""The `ccshortlink` command: turns errors into clear messages and exit codes (78 = config)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ccshortlink import __version__
from ccshortlink.agents import AgentsError, load_agents
from ccshortlink.config import Config, ConfigError, load_config
from ccshortlink.links import check_templates
from ccshortlink.logs import configure_logging, get_logger
from ccshortlink.store import StoreError

EXIT_CONFIG = 78
DEFAULT_CONFIG = "/etc/ccshortlink/ccshortlink.toml"


def _load(path: str) -> Config:
    """Config, agents file and templates all validated, every problem reported together."""
    config = load_config(path)
    problems = list(check_templates(config.sms.templates, config.sms.default_language))
    try:
        load_agents(config.agents_file)
    except AgentsError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(path, problems)
    return config


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    agents = load_agents(config.agents_file)
    print(f"{args.config}: OK ({len(agents)} agents from {config.agents_file})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ccshortlink.daemon import Daemon, StartupError
    from ccshortlink.notify import SystemdNotifier

    config = _load(args.config)
    configure_logging(config.log_level)
    log = get_logger()
    log.info("daemon_starting", version=__version__, config=str(config.path))
    daemon = Daemon(config, log, notifier=SystemdNotifier.from_environment())
    try:
        return asyncio.run(daemon.run())
    except StartupError as exc:
        log.error("startup_failed", reason=str(exc))
        print(f"ccshortlink: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _cmd_send(args: argparse.Namespace) -> int:
    from ccshortlink.cards import CardService
    from ccshortlink.links import SmsTemplates
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
    from ccshortlink.demo import run_demo

    return asyncio.run(run_demo(port=args.port, exit_after=args.exit_after))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccshortlink",
        description="Text each contact-center caller a short link to the agent they spoke with.")
    parser.add_argument("--version", action="version", version=f"ccshortlink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                       help=f"configuration file (default {DEFAULT_CONFIG})")
        return p

    with_config(sub.add_parser("run", help="run the daemon")).set_defaults(func=_cmd_run)
    with_config(sub.add_parser("check-config", help="validate the configuration and agents file")
                ).set_defaults(func=_cmd_check_config)
    send = with_config(sub.add_parser("send", help="send an agent's card to a number now"))
    send.add_argument("--agent", required=True, help="the agent's CS ID")
    send.add_argument("--to", required=True, help="the customer's number")
    send.set_defaults(func=_cmd_send)
    demo = sub.add_parser("demo", help="the whole path on one machine, no PBX or SMSC needed")
    demo.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    demo.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                      help="stop by itself after this many seconds")
    demo.set_defaults(func=_cmd_demo)
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
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
