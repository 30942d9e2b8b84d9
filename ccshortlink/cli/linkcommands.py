"""`ccshortlink links`: list, show, revoke and extend card links, through the store."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from ccshortlink.cli.exits import Exit
from ccshortlink.cli.reportview import table
from ccshortlink.config.settings import Config, load_config
from ccshortlink.core.linkadmin import (
    MAX_LIST_LIMIT,
    ChangedBy,
    LinkEntry,
    Revoked,
    days_problem,
    link_json,
    shown_number,
)
from ccshortlink.core.policy import NumberRejected, normalise_number

if TYPE_CHECKING:
    from ccshortlink.store.choose import AnyStore as Store

T = TypeVar("T")


def cmd_links(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # a broken agents file must not stop a revocation
    number = None
    if getattr(args, "number", None) is not None:
        number = _e164(args.number, config)
        if number is None:
            return Exit.USAGE
    action: Callable[[argparse.Namespace, Config, str | None], int] = _ACTIONS[args.action]
    return action(args, config, number)


def _e164(raw: str, config: Config) -> str | None:
    """The number as links store it, whatever form it was typed in (landlines too)."""
    found = normalise_number(raw, replace(config.policy, mobile_only=False))
    if isinstance(found, NumberRejected):
        print(f"ccshortlink: {raw!r}: {found.reason}", file=sys.stderr)
        return None
    return found.e164


def _with_store(config: Config, work: Callable[[Store, float], Awaitable[T]]) -> T:
    # not for `--help`: the CLI starts faster without
    from ccshortlink.store.choose import open_store

    async def run() -> T:
        async with await open_store(config.db) as store:
            return await work(store, time.time())
    return asyncio.run(run())


def _seen_within() -> str:
    """How soon a running daemon stops serving a link changed from here: it keeps a live
    link for LINK_TTL seconds before reading it again."""
    from ccshortlink.web.app import LINK_TTL

    return f"{LINK_TTL:g} seconds"


def _stamp(at: float | None, zone: ZoneInfo) -> str:
    return "" if at is None else f"{datetime.fromtimestamp(at, zone):%Y-%m-%d %H:%M}"


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _list(args: argparse.Namespace, config: Config, number: str | None) -> int:
    if not 1 <= args.limit <= MAX_LIST_LIMIT:
        print(f"ccshortlink: --limit must be 1 to {MAX_LIST_LIMIT}", file=sys.stderr)
        return Exit.USAGE
    entries = _with_store(config, lambda store, now: store.find_links(
        now=now, agent_id=args.agent, customer_number=number, include_all=args.all,
        limit=args.limit))
    zone = ZoneInfo(config.policy.timezone)
    # The number in full only to an operator who typed it; a list by agent or of everything
    # can end up pasted in a ticket.
    in_full = number is not None
    if args.json:
        _print_json([link_json(e, zone, config.web.public_url, full_number=in_full)
                     for e in entries])
        return Exit.OK
    if not entries:
        print("no live links" if not args.all else "no links", file=sys.stderr)
        return Exit.OK
    rows = [[e.code, e.agent_id, shown_number(e.customer_number, in_full=in_full),
             _stamp(e.created_at, zone), _stamp(e.expires_at, zone), e.status, str(e.opens)]
            for e in entries]
    print("\n".join(table(["code", "agent", "customer", "created", "expires", "status",
                           "opens"], rows, figures=False)))
    if len(entries) == args.limit:
        print(f"(the newest {args.limit}; --limit N for more)", file=sys.stderr)
    return Exit.OK


def _show(args: argparse.Namespace, config: Config, number: str | None) -> int:
    entry = _with_store(config, lambda store, now: store.link_entry(args.code, now))
    if entry is None:
        return _unknown(args.code)
    zone = ZoneInfo(config.policy.timezone)
    if args.json:
        _print_json(link_json(entry, zone, config.web.public_url))
        return Exit.OK
    print("\n".join(_describe(entry, config, zone)))
    return Exit.OK


def _describe(entry: LinkEntry, config: Config, zone: ZoneInfo) -> list[str]:
    rating = "-" if entry.rating is None else f"{entry.rating}/5"
    lines = [
        f"Link {entry.code}: {entry.status}",
        f"  url       {config.web.public_url}/{entry.code}",
        f"  agent     {entry.agent_id}",
        f"  customer  {shown_number(entry.customer_number, in_full=False)}"
        f"  (ccshortlink trace {entry.code} for the whole story)",
        f"  call      {entry.linkedid or '-'}",
        f"  created   {_stamp(entry.created_at, zone)}",
        f"  expires   {_stamp(entry.expires_at, zone)}",
    ]
    if entry.revoked_at is not None:
        lines.append(f"  revoked   {_stamp(entry.revoked_at, zone)}")
    lines += [f"  SMS       {entry.sms_status or 'none'}",
              f"  opened    {entry.opens} time(s), call-back tapped {entry.call_taps} time(s),"
              f" rating {rating}"]
    for change in entry.changes:
        until = f" until {_stamp(change.expires_at, zone)}" if change.expires_at else ""
        lines.append(f"  {_stamp(change.at, zone)}  {change.kind} by {change.by}{until}")
    return lines


def _revoke(args: argparse.Namespace, config: Config, number: str | None) -> int:
    zone = ZoneInfo(config.policy.timezone)
    if number is not None:
        done = _with_store(config, lambda store, now: store.revoke_number(
            number, by=ChangedBy.CLI, now=now))
        print(f"revoked {len(done)} live link(s) of {number}"
              + (": " + ", ".join(r.entry.code for r in done) if done else ""))
        _cancelled(done)
        if done:
            print(f"the running daemon answers 410 for them within {_seen_within()}")
        return Exit.OK
    revoked = _with_store(config, lambda store, now: store.revoke_code(
        args.code, by=ChangedBy.CLI, now=now))
    if revoked is None:
        return _unknown(args.code)
    entry = revoked.entry
    who = f"{entry.agent_id} → {shown_number(entry.customer_number, in_full=False)}"
    if not revoked.revoked_now:
        print(f"{entry.code} ({who}) was already revoked on {_stamp(entry.revoked_at, zone)}")
        return Exit.OK
    print(f"revoked {entry.code} ({who}); the running daemon answers 410 for it within "
          f"{_seen_within()}")
    _cancelled([revoked])
    return Exit.OK


def _cancelled(done: list[Revoked]) -> None:
    cancelled = sum(r.sms_cancelled for r in done)
    if cancelled:
        print(f"{cancelled} queued SMS carrying the link(s) will not be sent")


def _extend(args: argparse.Namespace, config: Config, number: str | None) -> int:
    problem = days_problem(args.days)
    if problem is not None:
        print(f"ccshortlink: {problem}", file=sys.stderr)
        return Exit.USAGE
    entry = _with_store(config, lambda store, now: store.extend_code(
        args.code, args.days, by=ChangedBy.CLI, now=now))
    if entry is None:
        return _unknown(args.code)
    if entry.revoked_at is not None:
        print(f"ccshortlink: {entry.code} is revoked; a revoked link cannot be extended",
              file=sys.stderr)
        return Exit.FAILED
    zone = ZoneInfo(config.policy.timezone)
    print(f"{entry.code} now expires {_stamp(entry.expires_at, zone)} {zone.key}")
    return Exit.OK


def _unknown(code: str) -> int:
    print(f"ccshortlink: no link {code!r}", file=sys.stderr)
    return Exit.FAILED


_ACTIONS: dict[str, Callable[[argparse.Namespace, Config, str | None], int]] = {
    "list": _list, "show": _show, "revoke": _revoke, "extend": _extend}
