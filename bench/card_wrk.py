"""Card page throughput with wrk: the real app vs the same bytes from memory, 1 k vs 1 M links.

Run: .venv/bin/python -m bench.card_wrk [--duration 5] [--repeats 3] [--sizes 1000,1000000]
The same card bytes are also served as a static file by an nginx (one worker) that the
benchmark starts itself, for a reference outside Python; without nginx that case is skipped
(`make bench-deps` installs it). Everything listens on 127.0.0.1; the database, the card file
and nginx's configuration, logs and temporary files live in a temporary directory. "of ceiling"
is the median over repeats of the case's req/s divided by the from-memory req/s of the same
repeat; the run fails if the visits stored differ from the phone requests answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.nginx import nginx_binary, nginx_static
from ccshortlink.config.agents import load_agents
from ccshortlink.config.settings import WebConfig
from ccshortlink.ops.logs import configure_logging, get_logger
from ccshortlink.ops.metrics import Metrics
from ccshortlink.store import Store
from ccshortlink.web.app import make_app

CONNECTIONS = 64
CODE = "BenchCard23"
AGENTS = 50
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
AGENTS_YAML = "agents:\n" + "".join(
    f"  - id: CS{1000 + n}\n    extensions: ['{1000 + n}']\n    name: 客服{n:02d}号\n"
    f"    phone: '+8620888{n:05d},,1001'\n    title: 高级客服专员\n    slogan: 用心服务每一位客户\n"
    f"    satisfaction: 4.8\n    satisfaction_votes: 120\n    calls_handled: 3200\n"
    f"    customers_served: 2800\n    service_records:\n      - title: 年度服务之星\n"
    f"        date: '2024'\n    reviews:\n      - stars: 5\n"
    f"        text: 耐心细致，一次就解决了问题。\n"
    for n in range(AGENTS))


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p99_ms: float
    requests: int


CEILING = "same bytes from memory"
NGINX = "same bytes, nginx static file"
PHONE = "card, phone (records a visit)"


def populate(db_path: Path, links: int) -> None:
    """Links as months of traffic leave them: one decision each, a rating for one in ten."""
    rng = random.Random(links)
    now = time.time()
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA synchronous=OFF")
        batch = 50_000
        for start in range(0, links, batch):
            rows = []
            for n in range(start, min(start + batch, links)):
                agent = f"CS{1000 + n % AGENTS}"
                number = f"+86138{rng.randrange(10**8):08d}"
                rows.append((n + 1, f"c{n:010d}" if n else CODE, agent, number, f"{n}.1",
                             now - rng.random() * 86_400 * 90))
            db.executemany(
                "INSERT INTO links (id, code, agent_id, customer_number, linkedid, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(i, c, a, num, lid, at, now + 30 * 86_400) for i, c, a, num, lid, at in rows])
            db.executemany(
                "INSERT INTO decisions (linkedid, trigger, agent_id, customer_number, outcome,"
                " link_id, decided_at) VALUES (?, 'hangup', ?, ?, 'sent', ?, ?)",
                [(lid, a, num, i, at) for i, _, a, num, lid, at in rows])
            db.executemany(
                "INSERT INTO ratings (link_id, agent_id, stars, comment, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(i, a, 1 + i % 5, "很好" if i % 3 else "", at, at)
                 for i, _, a, _, _, at in rows if i % 10 == 0])
    # Months of traffic would have been checkpointed long ago; without this, the first
    # visits commit copies the whole bulk load out of the WAL in the middle of a run.
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def wrk(url: str, duration: float, user_agent: str) -> Result:
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration:g}s", "--latency",
        "-H", f"User-Agent: {user_agent}", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await process.communicate())[0].decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", output, re.MULTILINE)
    total = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if process.returncode != 0 or rps is None or p99 is None or total is None or non2xx:
        raise RuntimeError(f"wrk failed or saw errors:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return Result(float(rps.group(1)), float(p99.group(1)) * scale, int(total.group(1)))


def stored_visits(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM visits").fetchone()[0])


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def static_app(body: bytes, headers: dict[str, str]) -> web.Application:
    """The floor: aiohttp answering the same bytes and headers with no work at all."""
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)
    app = web.Application()
    app.router.add_get("/{code}", handler)
    return app


async def measure(links: int, folder: Path, duration: float, repeats: int,
                  nginx: str | None) -> dict[str, list[Result]]:
    agents_file = folder / "agents.yaml"
    agents_file.write_text(AGENTS_YAML, encoding="utf-8")
    db_path = folder / f"bench-{links}.db"
    await (await Store.open(db_path)).close()  # schema from the real migrations
    started = time.perf_counter()
    populate(db_path, links)
    print(f"  {links:,} links stored in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    directory = load_agents(agents_file)
    config = WebConfig(host="127.0.0.1", port=0, public_url="https://c.example.com",
                       hotline="400-820-8820", company="Example Telecom")
    results: dict[str, list[Result]] = {}
    async with await Store.open(db_path) as store:
        app = make_app(store=store, agents=lambda: directory, web_config=config, clock=time.time,
                       health=lambda: {}, metrics=Metrics(), send_card=None,
                       log=get_logger(component="web"))
        runner, base = await serve(app)
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(f"{base}/{CODE}", headers={"User-Agent": "bot"}) as sample:
                body = await sample.read()
                keep = ("Content-Type", "Cache-Control", "Content-Security-Policy",
                        "X-Content-Type-Options", "Referrer-Policy")
                headers = {k: sample.headers[k] for k in keep}
            static_runner, static_base = await serve(static_app(body, headers))
            try:
                async with contextlib.AsyncExitStack() as stack:
                    cases = [(CEILING, f"{static_base}/{CODE}", PHONE_UA)]
                    if nginx is not None:
                        nginx_base = await stack.enter_async_context(
                            nginx_static(nginx, folder, body, CODE, headers))
                        cases.append((NGINX, f"{nginx_base}/{CODE}", PHONE_UA))
                    cases += [("card, preview bot (read only)", f"{base}/{CODE}", "Slackbot 1.0"),
                              (PHONE, f"{base}/{CODE}", PHONE_UA)]
                    for repeat in range(repeats):
                        # Each repeat starts with a different case: a neighbour's burst of
                        # work on this machine then hurts every case alike.
                        turn = repeat % len(cases)
                        for name, url, agent in cases[turn:] + cases[:turn]:
                            results.setdefault(name, []).append(await wrk(url, duration, agent))
            finally:
                await static_runner.cleanup()
        finally:
            await runner.cleanup()  # writes the visits still buffered
    # wrk stops with requests in flight: the server may have counted up to one per connection
    # more than wrk saw answered.
    answered = sum(r.requests for r in results[PHONE])
    recorded = stored_visits(db_path)
    print(f"  card is {len(body):,} bytes; phone requests answered {answered:,},"
          f" visits recorded {recorded:,}", file=sys.stderr)
    if not answered <= recorded <= answered + CONNECTIONS * repeats:
        raise RuntimeError(f"visits recorded ({recorded}) do not match requests ({answered})")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median shown)")
    parser.add_argument("--sizes", default="1000,1000000", help="stored links, comma-separated")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 1
    nginx = nginx_binary()
    if nginx is None:
        print("nginx not installed: run `make bench-deps` (Debian package nginx-light);"
              f" skipping the \"{NGINX}\" case", file=sys.stderr)
    configure_logging("warning")  # one log line per request would measure the terminal
    print(f"{'links':>10}  {'case':<32} {'req/s':>9} {'p99 ms':>8} {'of ceiling':>10}")
    with tempfile.TemporaryDirectory(prefix="ccshortlink-bench-") as tmp:
        for links in (int(s) for s in args.sizes.split(",")):
            rows = asyncio.run(measure(links, Path(tmp), args.duration, args.repeats, nginx))
            ceiling = rows[CEILING]
            for name, runs in rows.items():
                rps = statistics.median(r.requests_per_second for r in runs)
                p99 = statistics.median(r.p99_ms for r in runs)
                # each repeat against the ceiling measured in the same repeat
                share = statistics.median(r.requests_per_second / c.requests_per_second
                                          for r, c in zip(runs, ceiling, strict=False))
                print(f"{links:>10,}  {name:<32} {rps:>9,.0f} {p99:>8.1f} {share:>10.0%}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
