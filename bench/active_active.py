"""One daemon on SQLite, one and two on PostgreSQL, side by side; then one of two SIGKILLed.

Run: .venv/bin/python -m bench stores [--quick] [--repeats N] [--seconds S] [--cases sqlite,pg]
     [--rate R] [--no-ladder] [--no-failover] [--own-core] [--durable]
Needs PostgreSQL's server binaries (initdb, pg_ctl): a throwaway cluster is started on
127.0.0.1 (tests/support/pgserver.py) and removed at the end; each run gets a new database.

Every case goes through the same code: the paced AMI peer of bench.pipeline (each daemon's
session gets every frame on one shared timeline, as two clients of one Asterisk do), the npm
SMSC, `ccshortlink run` x1 or x2 on one config. CPU per call is the daemons' CPU time (both
summed) over the calls; the PostgreSQL server's CPU is shown beside it. Latency is from the
peer writing a call's last Hangup (the first session to get it) to the SMSC accepting the
last part of the SMS.

The cluster runs as the tests run it, without flushing to disk (fsync, synchronous_commit and
full_page_writes off); --durable keeps PostgreSQL's defaults, every commit flushed.

With --own-core the daemons run on the machine's last CPU (taskset) and everything else (the
bench's own traffic, the SMSC, PostgreSQL) on the others: a daemon whose database is on
another server, as in "More than one box", rather than four programs sharing every core.

Failover: two daemons on PostgreSQL with a short lease; one is SIGKILLed a third of the way
through the burst. Lost = answered calls without a whole SMS; duplicates = whole SMS beyond
one per call; "logged" = duplicated SMS whose takeover is in sms_events (what `trace` shows).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.daemon_process import (
    NORMAL_SMPP,
    OPEN_SMPP,
    SmppSettings,
    cpu_seconds,
)
from bench.multidaemon import SharedPacedPeer, pg_cpu, running_daemons
from bench.peers import SmscProcess
from bench.pipeline import steady_rate
from bench.report import median, percentile, table
from bench.traffic import CallBook, timeline
from tests.support.pgserver import PgServer, find_bin, remove_server, start_server

FAILOVER_LEASE = 3.0
FAILOVER_SMSC_DELAYS_MS = (0, 300)
SUSTAINED_P99 = 1.0  # as bench.pipeline: no backlog building up


@dataclass
class Case:
    name: str
    daemons: int
    postgres: bool


CASES = (Case("1 daemon, SQLite", 1, False), Case("1 daemon, PostgreSQL", 1, True),
         Case("2 daemons, PostgreSQL", 2, True))


@dataclass
class Result:
    case: str
    rate: float
    calls: int
    ended_per_second: float
    lost: int
    duplicates: int  # whole SMS beyond one per call
    duplicate_parts: int
    latencies: list[float]
    peer_lag: float
    cpu_ms_per_call: float  # daemons, summed
    pg_ms_per_call: float
    killed_at_call: int | None = None
    takeovers: int = 0  # SMS with a 'requeued' event
    duplicates_logged: int = 0
    in_flight_at_kill: int = 0  # SMS rows 'submitting' (any daemon) just before the SIGKILL
    victim_queued: int = 0  # cards the killed daemon had queued (its log)
    doubled: int = 0  # customers with any SMS or part accepted more than once

    @property
    def sustained(self) -> bool:
        return (self.lost == 0 and self.duplicates == 0 and self.duplicate_parts == 0
                and percentile(self.latencies, 99) <= SUSTAINED_P99)


def sql_rows(server: PgServer, dbname: str, statement: str) -> list[tuple[object, ...]]:
    return server.sql(statement, dbname)


async def run_case(book: CallBook, case: Case, rate: float, seconds: float,
                   server: PgServer | None, dbname: str, *, kill_after: float | None = None,
                   base: SmppSettings = NORMAL_SMPP, smsc_delay_ms: int = 0,
                   wrapper: tuple[str, ...] = ()) -> Result:
    """`rate` calls/s for `seconds` on a fresh database; with kill_after, SIGKILL daemon 1
    once that share of the calls has been texted. Each daemon starts under `wrapper`."""
    calls = book.calls(max(1, round(rate * seconds)))
    line = timeline(calls, rate)
    # Both daemons pace their half of the account; the account itself allows 2 parts per call
    # with room to spare (as NORMAL_SMPP does for one daemon).
    smpp = SmppSettings(base.window, base.max_per_second * case.daemons)
    url = None
    if case.postgres:
        assert server is not None
        server.sql(f"CREATE DATABASE {dbname}")
        url = server.url(dbname)
    lease = FAILOVER_LEASE if kill_after is not None else None
    killed_at: int | None = None
    in_flight = 0
    with tempfile.TemporaryDirectory(prefix="ccshortlink-bench-") as tmp:
        folder = Path(tmp)
        smsc = SmscProcess(folder, receipts=True, extra=(
            ("--delay-ms", str(smsc_delay_ms)) if smsc_delay_ms else ()))
        peer = SharedPacedPeer(line, book.banner, case.daemons)
        async with running_daemons(folder, smsc, peer, count=case.daemons, smpp=smpp, url=url,
                                   lease=lease, wrapper=wrapper) as daemons:
            pids = [d.pid for d in daemons]
            before = {pid: cpu_seconds(pid) for pid in pids}
            pg_before = pg_cpu(server) if server is not None and case.postgres else 0.0
            after: dict[int, float] = {}
            loop = asyncio.get_running_loop()
            wanted = {call.customer_number for call in calls}
            deadline = None
            while True:
                smsc.poll()
                if kill_after is not None and killed_at is None and \
                        len(smsc.by_destination) >= kill_after * len(calls):
                    victim = daemons[0]
                    assert server is not None
                    in_flight = len(sql_rows(server, dbname, "SELECT id FROM sms"
                                             " WHERE status = 'submitting'"))
                    after[victim.pid] = cpu_seconds(victim.pid)
                    killed_at = len(smsc.by_destination)
                    await victim.kill()
                done = wanted <= smsc.by_destination.keys() and all(
                    smsc.by_destination[n].complete_messages for n in wanted)
                if done and killed_at is not None and server is not None:
                    # the dead daemon's claimed SMS stay 'submitting' until a lease runs out
                    done = not sql_rows(server, dbname, "SELECT id FROM sms WHERE status IN"
                                        " ('queued', 'submitting') LIMIT 1")
                finished = peer.replays_completed >= (1 if kill_after else case.daemons)
                if finished and deadline is None:
                    deadline = loop.time() + max(30.0, seconds) + (lease or 0.0)
                if (done and finished) or (deadline and loop.time() > deadline):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5 + (lease or 0.0))  # a duplicate would show by now
            smsc.poll()
            for pid in pids:
                if pid not in after:
                    after[pid] = cpu_seconds(pid)
            pg_after = pg_cpu(server) if server is not None and case.postgres else 0.0
            for daemon in daemons:
                daemon.poll()
    latencies, lost, duplicates, parts = [], 0, 0, 0
    doubled: set[str] = set()
    for n, call in enumerate(calls):
        delivery = smsc.by_destination.get(call.customer_number)
        if delivery is None or delivery.complete_messages == 0:
            lost += 1
            continue
        if delivery.complete_messages > 1 or delivery.duplicate_parts:
            doubled.add(call.customer_number.lstrip("+"))
        duplicates += delivery.complete_messages - 1
        parts += delivery.duplicate_parts
        if delivery.completed_at is not None and n in peer.hangup_written:
            latencies.append(delivery.completed_at - peer.hangup_written[n])
    takeovers = logged = 0
    if case.postgres and server is not None:
        taken = sql_rows(server, dbname, "SELECT DISTINCT s.destination FROM sms s JOIN"
                         " sms_events e ON e.sms_id = s.id AND e.kind = 'requeued'")
        taken_numbers = {str(r[0]).lstrip("+") for r in taken}
        takeovers = len(taken_numbers)
        logged = len(doubled & taken_numbers)
    cpu = sum(after[pid] - before[pid] for pid in before)
    return Result(
        case=case.name, rate=rate, calls=len(calls),
        ended_per_second=steady_rate(sorted(peer.hangup_written.values())),
        lost=lost, duplicates=duplicates, duplicate_parts=parts, latencies=latencies,
        peer_lag=peer.max_lag, cpu_ms_per_call=cpu * 1000 / len(calls),
        pg_ms_per_call=(pg_after - pg_before) * 1000 / len(calls),
        killed_at_call=killed_at, takeovers=takeovers, duplicates_logged=logged,
        in_flight_at_kill=in_flight, doubled=len(doubled),
        victim_queued=len(daemons[0].named("card_queued")) if killed_at is not None else 0)


HEADER = ["case", "calls/s asked", "calls x runs", "calls/s ended", "lost", "dup SMS",
          "dup parts", "p50 ms", "p99 ms", "peer lag ms", "daemon CPU ms/call",
          "x SQLite", "PostgreSQL CPU ms/call", "sustained"]


def summary(runs: list[Result], base_cpu: float) -> list[str]:
    med = lambda f: median([f(r) for r in runs])  # noqa: E731
    cpu = med(lambda r: r.cpu_ms_per_call)
    return [runs[0].case, f"{runs[0].rate:g}", f"{runs[0].calls} x{len(runs)}",
            f"{med(lambda r: r.ended_per_second):.0f}", str(max(r.lost for r in runs)),
            str(max(r.duplicates for r in runs)), str(max(r.duplicate_parts for r in runs)),
            f"{med(lambda r: percentile(r.latencies, 50)) * 1000:.1f}",
            f"{med(lambda r: percentile(r.latencies, 99)) * 1000:.1f}",
            f"{med(lambda r: r.peer_lag) * 1000:.0f}", f"{cpu:.2f}",
            f"{cpu / base_cpu:.2f}" if base_cpu else "-",
            f"{med(lambda r: r.pg_ms_per_call):.2f}" if "Postgre" in runs[0].case else "-",
            f"{sum(r.sustained for r in runs)}/{len(runs)}"]


def row(r: Result) -> str:
    return (f"{r.case} | {r.rate:g}/s | {r.calls} calls | lost {r.lost} | dup {r.duplicates}"
            f" (parts {r.duplicate_parts}) | p50 {percentile(r.latencies, 50) * 1000:.1f} ms"
            f" | p99 {percentile(r.latencies, 99) * 1000:.1f} ms | lag {r.peer_lag * 1000:.0f} ms"
            f" | daemon CPU {r.cpu_ms_per_call:.2f} ms/call | pg {r.pg_ms_per_call:.2f} ms/call"
            + (f" | killed after {r.killed_at_call} texted ({r.in_flight_at_kill} SMS"
               f" submitting, {r.victim_queued} cards queued by it), takeovers {r.takeovers},"
               f" customers doubled {r.doubled}, of them with a logged takeover"
               f" {r.duplicates_logged}" if r.killed_at_call is not None
               else ""))


async def main_async(repeats: int, seconds: float, ladder: tuple[float, ...], *,
                     cases: tuple[Case, ...] = CASES, rate: float = 100.0,
                     with_failover: bool = True, durable: bool = False,
                     wrapper: tuple[str, ...] = ()) -> list[str]:
    book = CallBook()
    server = start_server(durable=durable)
    serial = 0

    def dbname() -> str:
        nonlocal serial
        serial += 1
        return f"bench_{serial}"

    lines: list[str] = []
    try:
        by_case: dict[str, list[Result]] = {c.name: [] for c in cases}
        for _ in range(repeats):  # interleaved, so drift on a shared machine hits every case
            for case in cases:
                result = await run_case(book, case, rate, seconds, server, dbname(),
                                        base=NORMAL_SMPP if rate <= 100 else OPEN_SMPP,
                                        wrapper=wrapper)
                by_case[case.name].append(result)
                print("  run:", row(result), flush=True)
        base = median([r.cpu_ms_per_call for r in by_case[cases[0].name]])
        rows = [summary(runs, base) for runs in by_case.values()]
        ladder_rows = []
        for case in cases:
            for rate in ladder:
                result = await run_case(book, case, rate, max(5.0, seconds / 2), server,
                                        dbname(), base=OPEN_SMPP, wrapper=wrapper)
                print("  ladder:", row(result), flush=True)
                ladder_rows.append(summary([result], 0.0))  # ratios: the 100 calls/s rows
                if not result.sustained:
                    break
        lines.append(table(HEADER, rows + ladder_rows))
        # The SMSC answering at once leaves a kill little to interrupt; answering 300 ms late
        # keeps a window's worth in flight, so the takeover (and its duplicates) is exercised.
        for delay in FAILOVER_SMSC_DELAYS_MS if with_failover else ():
            failover = await run_case(book, CASES[2], 100, seconds, server, dbname(),
                                      kill_after=1 / 3, smsc_delay_ms=delay, wrapper=wrapper)
            print("  failover:", row(failover), flush=True)
            lines.append(f"failover (2 daemons on PostgreSQL, lease {FAILOVER_LEASE:g} s,"
                         f" SMSC answers after {delay} ms, daemon 1 SIGKILLed): " + row(failover))
    finally:
        remove_server(server)
    return lines


def own_core() -> tuple[str, ...]:
    """Keep the last CPU for the daemons: this process (and so PostgreSQL, the SMSC, the
    traffic it starts) moves to the others; the daemons' wrapper (taskset) is returned."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("bench stores --own-core needs two CPUs or more")
    os.sched_setaffinity(0, cpus[:-1])
    print(f"daemons on CPU {cpus[-1]} alone; the bench, the SMSC and PostgreSQL on {cpus[:-1]}")
    return ("taskset", "-c", str(cpus[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run of each case at 100 calls/s, short ladder (< 8 min)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds of traffic per run (default 20 quick, 30 otherwise)")
    parser.add_argument("--cases", default="sqlite,pg,pg2",
                        help="which of sqlite, pg, pg2 (two daemons), in this order; the first"
                             " is the CPU baseline")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="calls/s of the side-by-side runs (default 100)")
    parser.add_argument("--no-ladder", action="store_true")
    parser.add_argument("--no-failover", action="store_true")
    parser.add_argument("--own-core", action="store_true",
                        help="the daemons on the last CPU, everything else on the others")
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL flushes every commit (its defaults), as in production")
    args = parser.parse_args(argv)
    keys = dict(zip(("sqlite", "pg", "pg2"), CASES, strict=True))
    cases = tuple(keys[k] for k in args.cases.split(",") if k)
    if find_bin() is None:
        print("bench stores: PostgreSQL's server (initdb, pg_ctl) is not installed")
        return 2
    seconds = args.seconds or (20.0 if args.quick else 30.0)
    repeats = 1 if args.quick else args.repeats
    ladder: tuple[float, ...] = (200.0, 400.0) if args.quick else (200.0, 300.0, 400.0, 600.0)
    if args.no_ladder:
        ladder = ()
    wrapper = own_core() if args.own_core else ()
    for line in asyncio.run(main_async(repeats, seconds, ladder, cases=cases, rate=args.rate,
                                       with_failover=not args.no_failover,
                                       durable=args.durable, wrapper=wrapper)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
