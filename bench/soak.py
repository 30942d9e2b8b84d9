"""Soak with faults: steady calls while the daemon, the AMI link and the SMSC are knocked down.

Run: .venv/bin/python -m bench soak [--minutes 3] [--rate 20]

Faults, at fractions of the run: 0.15 the daemon is SIGKILLed and restarted on the same
database; 0.35 and 0.75 the AMI peer drops the connection; 0.55 the SMSC is SIGKILLed and
comes back on the same port 5 s later.

Which calls must get exactly one SMS ("answered calls of the run"): every call whose frames
all went to one daemon process, and, for the process that was SIGKILLed, whose last Hangup was
written at least GRACE seconds before the kill. Calls split across the kill are legitimately
lost (the new process never saw them bridged), and so may be calls that ended within GRACE
of the kill (read but not yet committed); both are counted and reported, not required.
An AMI drop loses nothing: the peer resumes where it stopped and the daemon keeps its calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.daemon_process import NORMAL_SMPP, DaemonProcess, rss_kib, write_config
from bench.peers import SmscProcess
from bench.report import median, table
from bench.traffic import Call, CallBook, PacedAmiPeer, timeline

GRACE = 1.0
SMSC_DOWN = 5.0
SMSC_DELAY_MS = 200
RSS_GROWTH_LIMIT = 0.05  # last third's median RSS at most 5% above the middle third's


@dataclass
class Soak:
    """What happened during the run, for the verdict."""

    faults: list[tuple[float, str]] = field(default_factory=list)  # (s from start, what)
    killed_at: dict[str, float] = field(default_factory=dict)  # process label -> wall clock
    rss: list[tuple[float, str, int]] = field(default_factory=list)  # (wall, label, KiB)
    recovered: int = 0  # SMS put back in the queue after the SIGKILL (sms_recovered)
    unacknowledged: int = 0  # parts in flight when the SMSC went away (smpp_disconnected)
    exit_code: int | None = None


async def _sample_rss(daemon: DaemonProcess, label: str, soak: Soak, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if daemon.running:
            with contextlib.suppress(FileNotFoundError):
                soak.rss.append((time.time(), label, rss_kib(daemon.pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def _collect_logs(daemon: DaemonProcess, soak: Soak) -> None:
    daemon.poll()
    soak.recovered += sum(int(e.get("count", 0)) for e in daemon.named("sms_recovered"))
    soak.unacknowledged += sum(int(e.get("unacknowledged", 0))
                               for e in daemon.named("smpp_disconnected"))


async def run_soak(minutes: float, rate: float) -> list[str]:
    seconds = minutes * 60
    book = CallBook()
    calls = book.calls(round(rate * seconds))
    line = timeline(calls, rate)
    soak = Soak()
    with tempfile.TemporaryDirectory(prefix="ccshortlink-soak-") as tmp:
        folder = Path(tmp)
        # A real SMSC takes a while to answer: with 200 ms, faults land on SMS in flight.
        smsc = SmscProcess(folder, receipts=True, extra=("--delay-ms", str(SMSC_DELAY_MS)))
        peer = PacedAmiPeer(line, book.banner)
        daemon: DaemonProcess | None = None
        stop_sampling = asyncio.Event()
        samplers: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        try:
            smpp_port = await smsc.start()
            ami_port = await peer.start()
            config = write_config(folder, ami_port=ami_port, smpp_port=smpp_port,
                                  smpp=NORMAL_SMPP, reconnect_max=5.0)
            daemon = DaemonProcess(config, folder / "daemon-1.jsonl")
            await daemon.start()
            await daemon.wait_ready()
            samplers.append(asyncio.create_task(_sample_rss(daemon, "1", soak, stop_sampling)))
            await peer.wait_for_login()
            started = loop.time()

            async def at(fraction: float) -> None:
                await asyncio.sleep(max(0.0, started + fraction * seconds - loop.time()))

            await at(0.15)
            soak.faults.append((loop.time() - started, "daemon SIGKILL, restarted"))
            peer.session_label = "2"  # the next login is the new process
            soak.killed_at["1"] = time.time()
            await daemon.kill()
            _collect_logs(daemon, soak)
            daemon = DaemonProcess(config, folder / "daemon-2.jsonl")
            await daemon.start()
            await daemon.wait_ready()
            samplers.append(asyncio.create_task(_sample_rss(daemon, "2", soak, stop_sampling)))
            for fraction in (0.35, 0.55, 0.75):
                await at(fraction)
                if fraction == 0.55:
                    soak.faults.append((loop.time() - started,
                                        f"SMSC SIGKILL, back {SMSC_DOWN:g} s later"))
                    await smsc.kill()
                    await asyncio.sleep(SMSC_DOWN)
                    await smsc.start()
                else:
                    soak.faults.append((loop.time() - started, "AMI connection dropped"))
                    await peer.disconnect_clients()
            await peer.wait_done(timeout=seconds + 120)
            wanted = {c.customer_number for c in classify(soak, peer)[0]}
            deadline = loop.time() + 60
            while loop.time() < deadline and not wanted <= smsc.by_destination.keys():
                smsc.poll()
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # late duplicates show up by now
            smsc.poll()
        finally:
            stop_sampling.set()
            await asyncio.gather(*samplers)
            if daemon is not None:
                soak.exit_code = await daemon.stop()
                _collect_logs(daemon, soak)
            await peer.stop()
            await smsc.kill()
    return verdict(soak, peer, smsc, seconds, rate)


def classify(soak: Soak, peer: PacedAmiPeer) -> tuple[list[Call], list[Call], list[Call]]:
    """(answered calls of the run, calls split across the SIGKILL, calls ended just before it)."""
    required: list[Call] = []
    split: list[Call] = []
    grey: list[Call] = []
    for n, call in enumerate(peer.line.calls):
        sessions = peer.sessions_of[n]
        if len(sessions) != 1:
            split.append(call)
            continue
        (label,) = sessions
        killed = soak.killed_at.get(label)
        if killed is not None and peer.hangup_written.get(n, killed) > killed - GRACE:
            grey.append(call)
        else:
            required.append(call)
    return required, split, grey


def verdict(soak: Soak, peer: PacedAmiPeer, smsc: SmscProcess, seconds: float,
            rate: float) -> list[str]:
    required, split, grey = classify(soak, peer)

    def deliveries(group: list[Call]) -> tuple[int, int, int, int]:
        none = one = more = dup_parts = 0
        for call in group:
            delivery = smsc.by_destination.get(call.customer_number)
            count = delivery.complete_messages if delivery else 0
            none += count == 0
            one += count == 1
            more += count > 1
            dup_parts += delivery.duplicate_parts if delivery else 0
        return none, one, more, dup_parts

    req = deliveries(required)
    spl = deliveries(split)
    gry = deliveries(grey)
    duplicates = req[3] + spl[3] + gry[3]
    window = NORMAL_SMPP.window
    accounted = soak.recovered * 2 + soak.unacknowledged  # every SMS here has 2 parts
    thirds = _rss_thirds([(at, kib) for at, label, kib in soak.rss if label == "2"])
    first_rss, middle_rss, last_rss = thirds
    # Warm-up (SQLite's page cache filling to its bound, the number cache, lazily loaded
    # metadata) happens in the first third; growth after it is what a leak would show.
    growth = (last_rss - middle_rss) / middle_rss if middle_rss else float("nan")
    checks = [
        ("every answered call of the run got exactly one SMS",
         f"{req[1]} of {len(required)} (none: {req[0]}, more than one: {req[2]})",
         req[0] == 0 and req[2] == 0),
        (f"duplicate parts ≤ SMPP window ({window})", str(duplicates), duplicates <= window),
        ("each duplicate logged (sms_recovered x 2 parts + smpp_disconnected unacknowledged)",
         f"{duplicates} duplicates, {accounted} logged as possibly resent",
         duplicates <= accounted),
        ("RSS not grown after warm-up (medians of the restarted daemon's first, middle and "
         "last thirds; last vs middle)",
         f"{first_rss:.1f} → {middle_rss:.1f} → {last_rss:.1f} MiB ({growth * 100:+.1f}%)",
         growth <= RSS_GROWTH_LIMIT),
        ("daemon stopped cleanly on SIGTERM at the end", f"exit {soak.exit_code}",
         soak.exit_code == 0),
    ]
    lines = [f"{len(peer.line.calls)} calls at {rate:g} calls/s for {seconds / 60:g} min; "
             f"faults at: " + "; ".join(f"{t:.0f} s {what}" for t, what in soak.faults), "",
             table(["check", "measured", "pass"],
                   [[name, value, "yes" if ok else "NO"] for name, value, ok in checks]), "",
             table(["calls", "count", "no SMS", "one SMS", "more than one"], [
                 ["answered calls of the run (required)", str(len(required)), *map(str, req[:3])],
                 ["split across the daemon SIGKILL (may be lost)", str(len(split)),
                  *map(str, spl[:3])],
                 [f"ended < {GRACE:g} s before the SIGKILL (may be lost)", str(len(grey)),
                  *map(str, gry[:3])]])]
    return lines


def run(minutes: float = 3.0, rate: float = 20.0) -> list[str]:
    return asyncio.run(run_soak(minutes, rate))


def _rss_thirds(samples: list[tuple[float, int]]) -> tuple[float, float, float]:
    """Median RSS in MiB over the first, middle and last third of the samples' time span."""
    if len(samples) < 3:
        return (0.0, 0.0, 0.0)
    start, end = samples[0][0], samples[-1][0]
    step = (end - start) / 3
    bounds = [(start, start + step), (start + step, end - step), (end - step, end)]
    return tuple(median([kib for at, kib in samples if low <= at <= high]) / 1024
                 for low, high in bounds)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second")
    args = parser.parse_args(argv)
    for line in run(args.minutes, args.rate):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

