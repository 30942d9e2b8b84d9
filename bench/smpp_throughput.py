"""SMS/s through SmppClient against the test SMSC, by window size and SMSC response delay."""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from ccshortlink.config.settings import SmppConfig
from ccshortlink.core.sms import encode_sms
from ccshortlink.smpp.client import SmppClient
from tests.support.smsc_peer import Smsc

ROOT = Path(__file__).resolve().parent.parent

TEXT = "Thanks for calling. Reach your agent again: https://cc.example.com/k7Hq2mXp"


@dataclass(frozen=True)
class Result:
    window: int
    delay_ms: int
    messages: int
    rates: list[float]  # SMS/s, one per run

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


async def _ignore(_: object) -> None:
    return None


async def one_run(port: int, window: int, messages: int) -> float:
    """Submit `messages` single-part SMS at once; return the SMS/s the client sustained."""
    log = structlog.wrap_logger(structlog.PrintLogger(sys.stderr),
                                wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    config = SmppConfig(host="127.0.0.1", port=port, system_id="ccshortlink", password="secret",
                        source_addr="CCShort", window=window, max_per_second=1e6,
                        response_timeout=30.0, enquire_link_interval=60.0)
    client = SmppClient(config, on_receipt=_ignore, on_mobile_originated=_ignore, log=log)
    await client.start()
    sms = encode_sms(TEXT, 1)
    try:
        started = time.perf_counter()
        await asyncio.gather(*(client.submit(f"+86138{i:08d}", sms) for i in range(messages)))
        return messages / (time.perf_counter() - started)
    finally:
        await client.close()


def message_count(window: int, delay_ms: int, seconds: float) -> int:
    """Enough messages for about `seconds` of traffic at the window's best case."""
    best = window / max(delay_ms / 1000, 0.0005)
    return int(min(max(best * seconds, 50), 4000))


async def benchmark(windows: list[int], delays: list[int], runs: int,
                    seconds: float) -> list[Result]:
    results = []
    for delay_ms in delays:
        smsc = await Smsc.start(delay_ms=delay_ms, quiet=True)
        try:
            for window in windows:
                messages = message_count(window, delay_ms, seconds)
                rates = [await one_run(smsc.port, window, messages) for _ in range(runs)]
                results.append(Result(window, delay_ms, messages, rates))
                print(f"  window {window:>3}, delay {delay_ms:>2} ms: "
                      + ", ".join(f"{r:,.0f}" for r in rates) + " SMS/s", file=sys.stderr)
        finally:
            await smsc.kill()
    return results


def table(results: list[Result]) -> str:
    # The round trip at window 1 without delay is the client+SMSC floor; with a delay the round
    # trip is that floor plus the delay. The best a window can do is window / round trip.
    floor = next((1 / r.median for r in results if r.window == 1 and r.delay_ms == 0), 0.0)
    lines = [f"{'delay':>6} {'window':>6} {'msgs':>6} {'SMS/s (median)':>15} "
             f"{'window/RTT':>11} {'ratio':>6}"]
    for r in results:
        rtt = r.delay_ms / 1000 + floor
        bound = r.window / rtt if rtt else float("nan")
        lines.append(f"{r.delay_ms:>4}ms {r.window:>6} {r.messages:>6} {r.median:>15,.0f} "
                     f"{bound:>11,.0f} {r.median / bound:>6.2f}")
    if floor:
        lines.append(f"round-trip floor (window 1, no delay): {floor * 1000:.2f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--delays", type=int, nargs="+", default=[0, 20],
                        help="SMSC response delay in ms (0 first: it measures the floor)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="target length of one run")
    args = parser.parse_args(argv)
    results = asyncio.run(benchmark(args.windows, args.delays, args.runs, args.seconds))
    print(table(results))


if __name__ == "__main__":
    main()
