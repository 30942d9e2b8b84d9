"""The `ccshortlink` command line: its commands, their arguments and their --help texts."""

from __future__ import annotations

import argparse
from typing import Any

from ccshortlink import __version__
from ccshortlink.cli import commands, linkcommands

DEFAULT_CONFIG = "/etc/ccshortlink/ccshortlink.toml"


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
                ).set_defaults(func=commands.cmd_run)
    with_config(command(sub, "check-config", "validate the configuration and agents file",
                "Also renders each SMS template with a typical agent and link and shows its "
                "parts and encoding; warns about example secrets, an unwritable database "
                "folder and links that are not https. Exit 0 = usable, 78 = not.")
                ).set_defaults(func=commands.cmd_check_config)
    send = with_config(command(sub, "send", "send an agent's card to a number now",
                          "The running daemon's outbox sends it within a second."))
    send.add_argument("--agent", required=True, help="the agent's CS ID")
    send.add_argument("--to", required=True, help="the customer's number")
    send.set_defaults(func=commands.cmd_send)
    demo = command(sub, "demo", "run the whole path on one machine, no PBX or SMSC needed")
    demo.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    demo.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                      help="stop by itself after this many seconds")
    demo.set_defaults(func=commands.cmd_demo)

    def with_json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--json", action="store_true", help="JSON for tools instead of text")
        return with_config(p)

    trace = with_json(command(
        sub, "trace", "show the story of a number, a link code or a call",
        "Every decision, SMS, receipt and visit, oldest first."))
    trace.add_argument("query", metavar="NUMBER|CODE|LINKEDID")
    trace.set_defaults(func=commands.cmd_trace)
    with_json(command(sub, "stats", "show figures for today and the last 7 days, per agent")
              ).set_defaults(func=commands.cmd_stats)
    with_json(command(sub, "agents", "list the agents and validate the agents file")
              ).set_defaults(func=commands.cmd_agents)
    opt_out = command(sub, "opt-out", "list, add or remove numbers on the do-not-send list")
    actions = opt_out.add_subparsers(dest="action", required=True)
    with_json(command(actions, "list", "list the numbers that are never texted")
              ).set_defaults(func=commands.cmd_opt_out)
    for action, text in (("add", "never text NUMBER again"), ("remove", "text NUMBER again")):
        change = with_config(command(actions, action, text))
        change.add_argument("number", metavar="NUMBER")
        change.set_defaults(func=commands.cmd_opt_out)
    links = command(sub, "links", "list, show, revoke or extend card links",
                    "Changes are recorded (trace shows them) and reach a running daemon within "
                    "seconds. Customer numbers are masked unless you asked by that number.")
    link_actions = links.add_subparsers(dest="action", required=True)
    listing = with_json(command(link_actions, "list", "list live links, newest first"))
    listing.add_argument("--agent", metavar="ID", help="only this agent's links (CS ID)")
    listing.add_argument("--number", metavar="N", help="only links to this customer number")
    listing.add_argument("--all", action="store_true", help="expired and revoked links too")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show = with_json(command(link_actions, "show", "show one link: its state, SMS and visits"))
    show.add_argument("code", metavar="CODE")
    revoke = with_config(command(link_actions, "revoke",
                                 "stop a link working: it answers 410 with the hotline",
                                 "Queued SMS carrying it are not sent. Exit 0 when done."))
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("code", metavar="CODE", nargs="?", help="the link's code")
    which.add_argument("--number", metavar="N", help="every live link of this customer number")
    extend = with_config(command(link_actions, "extend", "keep a link working for longer",
                                 "Counted from its expiry, or from now if it has passed."))
    extend.add_argument("code", metavar="CODE")
    extend.add_argument("--days", type=int, required=True, metavar="D", help="days to add")
    for link_action in (listing, show, revoke, extend):
        link_action.set_defaults(func=linkcommands.cmd_links)
    _add_sms(sub, command, with_json)
    return parser


def _add_sms(sub: Any, command: Any, with_json: Any) -> None:
    """`ccshortlink sms preview`: what an SMS will say and cost, before it is sent."""
    from ccshortlink.cli import smspreview

    sms = command(sub, "sms", "preview the exact SMS text, its encoding and its cost")
    actions = sms.add_subparsers(dest="action", required=True)
    preview = with_json(command(
        actions, "preview", "show the exact text an SMS would carry and how many parts it costs",
        "A card (--agent) or an answer to a reply (--reply), signed as it is sent; a card "
        "reuses the pair's live link when there is one."))
    preview.add_argument("--agent", help="the agent's CS ID: preview their card")
    preview.add_argument("--reply", choices=smspreview.ANSWERS,
                         help="preview the answer to an opt-out, an opt-in or a help reply")
    preview.add_argument("--to", required=True, help="the customer's number")
    preview.add_argument("--language", help="this language's text, not the one picked for "
                         "the agent and number")
    preview.set_defaults(func=smspreview.cmd_sms_preview)
