"""`python -m bench [NAME [ARGS...]]`: run every benchmark in turn, or one by name."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable

from bench.report import table

# name -> module; smpp and card are optional (written separately, run when present).
BENCHMARKS = {
    "pipeline": "bench.pipeline",
    "ingest": "bench.ingest",
    "footprint": "bench.footprint",
    "soak": "bench.soak",
    "store": "bench.store_batching",
    "smpp": "bench.smpp_throughput",
    "card": "bench.card_wrk",
    "stores": "bench.active_active",
}
OPTIONAL = {"smpp", "card"}
USAGE = f"usage: python -m bench [{'|'.join(BENCHMARKS)}] [benchmark options]"


def _entry(name: str) -> Callable[..., object] | None:
    try:
        module = importlib.import_module(BENCHMARKS[name])
    except ModuleNotFoundError as exc:
        if name in OPTIONAL and exc.name == BENCHMARKS[name]:
            return None
        raise
    return module.main


def run_one(name: str, args: list[str]) -> int:
    entry = _entry(name)
    if entry is None:
        print(f"bench {name}: not available ({BENCHMARKS[name]} is missing)", file=sys.stderr)
        return 2
    if inspect.signature(entry).parameters:
        result = entry(args)
    else:  # a main() that reads sys.argv itself
        saved, sys.argv = sys.argv, [f"bench {name}", *args]
        try:
            result = entry()
        finally:
            sys.argv = saved
    return result if isinstance(result, int) else 0


def run_all() -> int:
    summary = []
    worst = 0
    for name in BENCHMARKS:
        print(f"\n## {name}\n", flush=True)
        started = time.monotonic()
        try:
            code = run_one(name, [])
        except Exception as exc:  # one broken benchmark must not hide the others' results
            print(f"bench {name} failed: {exc!r}", file=sys.stderr)
            code = 1
        summary.append([name, "ok" if code == 0 else "skipped" if code == 2 else f"exit {code}",
                        f"{time.monotonic() - started:.0f} s"])
        worst = max(worst, 0 if code == 2 else code)
    print("\n## summary\n")
    print(table(["benchmark", "result", "took"], summary))
    return worst


def main(argv: list[str]) -> int:
    if not argv:
        return run_all()
    if argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] not in BENCHMARKS:
        print(USAGE, file=sys.stderr)
        return 2
    return run_one(argv[0], argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
