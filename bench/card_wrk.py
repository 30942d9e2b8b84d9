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
import grp
import os
import pwd
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

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
NGINX_START_SECONDS = 10.0
NGINX_STOP_SECONDS = 10.0


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


def nginx_binary() -> str | None:
    """The nginx executable, also where Debian puts it outside a non-root PATH."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (nginx cannot be told to pick one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nginx_string(value: str) -> str:
    """A value as a double-quoted nginx string."""
    if "$" in value:  # nginx would read a variable there, and has no escape for it
        raise ValueError(f"cannot pass {value!r} to nginx literally")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nginx_conf(folder: Path, port: int, card: Path, headers: dict[str, str]) -> str:
    """An nginx.conf that serves only the card file, with every path inside folder."""
    q = nginx_string
    add_headers = "".join(f"            add_header {name} {q(value)};\n"
                          for name, value in headers.items() if name != "Content-Type")
    # Run as root, nginx would switch its worker to nobody, who cannot enter the private
    # temporary directory; the benchmark's own user can (ignored with a warning otherwise).
    user = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"
    return f"""\
# One worker: comparable with the single-process aiohttp servers of the other cases.
daemon off;
master_process on;
worker_processes 1;
user {user};
pid {q(str(folder / "nginx.pid"))};
error_log {q(str(folder / "nginx-error.log"))} warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path {q(str(folder / "nginx-client-body"))};
    proxy_temp_path {q(str(folder / "nginx-proxy"))};
    fastcgi_temp_path {q(str(folder / "nginx-fastcgi"))};
    uwsgi_temp_path {q(str(folder / "nginx-uwsgi"))};
    scgi_temp_path {q(str(folder / "nginx-scgi"))};
    default_type text/html;
    charset utf-8;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    # aiohttp keeps a connection for any number of requests; nginx's default of 1,000 would
    # make wrk reconnect every few hundred milliseconds and measure connection setup too.
    keepalive_requests 1000000;

    server {{
        listen 127.0.0.1:{port};
        root {q(str(card.parent))};
        location = /{CODE} {{
{add_headers}            try_files /{card.name} =404;
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


async def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Returns once 127.0.0.1:port accepts connections; fails if nginx exits or is slow."""
    deadline = time.monotonic() + NGINX_START_SECONDS
    while True:
        if process.poll() is not None:
            error = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{error}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on 127.0.0.1:{port} "
                                   f"in {NGINX_START_SECONDS:g} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def stop_nginx(process: subprocess.Popen[bytes]) -> None:
    """Graceful shutdown (SIGQUIT lets the worker finish), killed if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGQUIT)
    try:
        process.wait(NGINX_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        # the whole group: a worker outlives a killed master
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.asynccontextmanager
async def nginx_static(binary: str, folder: Path, body: bytes,
                       headers: dict[str, str]) -> AsyncIterator[str]:
    """An nginx serving body as a static file at /CODE; yields its base URL."""
    home = folder / "nginx"
    shutil.rmtree(home, ignore_errors=True)  # left by the previous size
    home.mkdir()
    card = home / "card.html"
    card.write_bytes(body)
    port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(nginx_conf(home, port, card, headers), encoding="utf-8")
    log = home / "nginx-error.log"
    # -e: messages from before the configuration is read go there too, not to /var/log.
    # A process group of its own, so that a hung nginx can be killed with its worker.
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", f"{home}/", "-e", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True)
    try:
        await wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_nginx(process)


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
                            nginx_static(nginx, folder, body, headers))
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
