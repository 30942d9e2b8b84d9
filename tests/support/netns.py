"""A private network namespace with only `lo` up, for a live PBX test; plain loopback otherwise.

As root, each live test gets a namespace of its own: Asterisk, the SIP phones, the SMSC and the
daemon run inside it (`ip netns exec`), so nothing they send can leave 127.0.0.1 and fixed ports
never clash with another test. The test's own sockets are made inside it too (`connect`).
Elsewhere the same processes run on the host's 127.0.0.1 with ports the kernel picked free.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_serial = itertools.count(1)


def namespaces_usable() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None and os.path.isdir("/proc/self/ns")


class Loopback:
    """Where a live test's processes run: a private namespace (root) or the host's loopback."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self._ports = itertools.count(20000)  # only used inside a private namespace
        self._media = itertools.count(40000, 10)

    @property
    def private(self) -> bool:
        return self.name is not None

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: the pid stays argv's)."""
        return ["ip", "netns", "exec", self.name, *argv] if self.name else argv

    def port(self) -> int:
        """A free port on 127.0.0.1 (TCP and UDP) where this test's processes run."""
        if self.name:
            return next(self._ports)
        while True:
            with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
                tcp.bind(("127.0.0.1", 0))
                port = int(tcp.getsockname()[1])
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port

    def media_port(self) -> int:
        """A free base for SIPp's RTP: it binds this port, the next and the one after (video)."""
        if self.name:
            return next(self._media)
        while True:
            base = self.port()
            try:
                for offset in (1, 2, 3):
                    with socket.socket(type=socket.SOCK_DGRAM) as udp:
                        udp.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base

    def ports(self, count: int) -> list[int]:
        return [self.port() for _ in range(count)]

    async def connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to 127.0.0.1:port from inside the namespace."""
        sock = await asyncio.to_thread(self._socket_inside)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    def _socket_inside(self) -> socket.socket:
        if not self.name:
            return socket.socket()
        # A socket stays in the namespace it was made in: enter it on a throwaway thread
        # (setns changes only the calling thread), make the socket there, and leave.
        made: list[socket.socket | BaseException] = []

        def inside() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                with open(f"/var/run/netns/{self.name}") as handle:
                    if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns into the test's namespace")
                made.append(socket.socket())
            except BaseException as error:  # handed back to the caller's thread
                made.append(error)

        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
        if isinstance(made[0], BaseException):
            raise made[0]
        return made[0]


@contextlib.contextmanager
def loopback() -> Iterator[Loopback]:
    """A private namespace with `lo` up when running as root, else the host's loopback."""
    if not namespaces_usable():
        yield Loopback(None)
        return
    name = f"ccs-live-{os.getpid()}-{next(_serial)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True, capture_output=True)
        yield Loopback(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
