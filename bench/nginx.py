"""An nginx (one worker) serving one file on 127.0.0.1, started and stopped by a benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

NGINX_START_SECONDS = 10.0
NGINX_STOP_SECONDS = 10.0


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


def nginx_conf(folder: Path, port: int, card: Path, code: str,
               headers: dict[str, str]) -> str:
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
        location = /{code} {{
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
async def nginx_static(binary: str, folder: Path, body: bytes, code: str,
                       headers: dict[str, str]) -> AsyncIterator[str]:
    """An nginx serving body as a static file at /code; yields its base URL."""
    home = folder / "nginx"
    shutil.rmtree(home, ignore_errors=True)  # left by the previous size
    home.mkdir()
    card = home / "card.html"
    card.write_bytes(body)
    port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(nginx_conf(home, port, card, code, headers), encoding="utf-8")
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
