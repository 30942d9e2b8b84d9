"""A real Asterisk for a live test: found like a user has one, configured per test, stopped by pid.

The configs in tests/live/asterisk/conf are rendered into the test's folder; the project's own
`etc/asterisk/manager.conf` user and `etc/asterisk/extensions-ccshortlink.conf` go in verbatim.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from tests.support.amiadmin import AmiAdmin
from tests.support.certs import Certs
from tests.support.configfile import ROOT
from tests.support.netns import Loopback

CONF = ROOT / "tests" / "live" / "asterisk" / "conf"
SHIPPED = ROOT / "etc" / "asterisk"
HOW_TO_ENABLE = ("no Asterisk for the live tests: set CCS_ASTERISK_PREFIX to an install "
                 "(e.g. unpack ../shared/asterisk/asterisk-*.tar.xz) or put asterisk on the PATH")
# Loaded where the install has them (a distribution's Asterisk does), left out elsewhere:
# DeviceStateChange comes from res_manager_devicestate.
OPTIONAL_MODULES = frozenset({"res_manager_devicestate.so"})
ADMIN = ("ccsadmin", "test-admin")  # the test's own privileged AMI user, never the daemon's


@dataclass(frozen=True)
class Install:
    """Where an Asterisk lives: its binary and its modules."""

    binary: Path
    modules: Path


def find_install() -> Install | None:
    """CCS_ASTERISK_PREFIX (an unpacked install), else an `asterisk` on the PATH."""
    prefix = os.environ.get("CCS_ASTERISK_PREFIX")
    if prefix:
        binary = Path(prefix) / "sbin" / "asterisk"
        candidates = [Path(prefix) / "lib" / "asterisk" / "modules"]
    else:
        found = shutil.which("asterisk") or shutil.which("asterisk", path="/usr/sbin:/sbin")
        if found is None:
            return None
        binary = Path(found).resolve()
        root = binary.parent.parent
        candidates = [root / "lib" / "asterisk" / "modules",
                      root / "lib" / "x86_64-linux-gnu" / "asterisk" / "modules"]
    modules = os.environ.get("CCS_ASTERISK_MODULES")
    if modules:
        candidates.insert(0, Path(modules))
    found_modules = next((path for path in candidates if (path / "chan_sip.so").exists()), None)
    if not binary.exists() or found_modules is None:
        return None
    return Install(binary, found_modules)


def ami_user(*, originate: bool = False) -> str:
    """The shipped `[ccshortlink]` AMI user, verbatim; `write = originate` only for call-backs."""
    text = (SHIPPED / "manager.conf").read_text(encoding="utf-8")
    user = text[text.index("[ccshortlink]"):]
    if originate:
        user = user.replace("\nwrite =", "\nwrite = originate ;", 1)
    return user


def render(template: str, values: dict[str, str]) -> str:
    """Fill in @NAME@ placeholders; a multi-line value replaces a line that holds only its name."""
    lines = []
    for line in template.splitlines():
        stripped = line.strip()
        if stripped in values:
            lines.append(values[stripped])
        elif stripped.startswith(";"):
            lines.append(line)  # comments mention placeholders by name
        else:
            for name, value in values.items():
                line = line.replace(name, value)
            lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Ports:
    ami: int
    sip: int
    agents: dict[str, int]  # extension -> its phone's SIP port
    trunk: int  # where Asterisk sends calls out to customers
    rtp: int  # first of 200 RTP ports


class Asterisk:
    """One Asterisk process, its config and logs in `folder` (etc/ lib/ log/ run/ spool/)."""

    def __init__(self, install: Install, net: Loopback, folder: Path, *, name: str = "pbxa",
                 originate: bool = False, hotline: str = "", tls: Certs | None = None,
                 rtp_start: int = 30000, lookup_port: int | None = None) -> None:
        """With `tls`, AMI also listens over TLS on `ami_tls_port` with that certificate.
        A second Asterisk in the same namespace needs its own `rtp_start` (200 ports each).
        `lookup_port`: where the daemon's web listens, put in the shipped dialplan's CURL()."""
        self.install, self.net, self.folder, self.name = install, net, folder, name
        agents = dict(zip(("1001", "1002"), net.ports(2), strict=True))
        self.ports = Ports(net.port(), net.port(), agents, net.port(), rtp_start if net.private
                           else net.port())
        self._originate, self._hotline, self._lookup_port = originate, hotline, lookup_port
        self.tls, self.ami_tls_port = tls, net.port() if tls else 0
        self.process: asyncio.subprocess.Process | None = None
        self.admin: AmiAdmin | None = None
        self.console = folder / "log" / "console.txt"

    def write_config(self) -> None:
        for sub in ("etc", "lib", "log", "log/cdr-csv", "run", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        values = {
            "@RUN@": str(self.folder), "@MODULES@": str(self.install.modules),
            "@SBIN@": str(self.install.binary.parent), "@NAME@": self.name,
            "@AMI_PORT@": str(self.ports.ami), "@SIP_PORT@": str(self.ports.sip),
            "@PORT_1001@": str(self.ports.agents["1001"]),
            "@PORT_1002@": str(self.ports.agents["1002"]),
            "@TRUNK_PORT@": str(self.ports.trunk),
            "@RTP_START@": str(self.ports.rtp), "@RTP_END@": str(self.ports.rtp + 199),
            "@CCS_USER@": ami_user(originate=self._originate), "@TLS@": self._tls_lines(),
            "@HOTLINE@": self._hotline,
        }
        for template in CONF.glob("*.conf"):
            text = render(template.read_text(encoding="utf-8"), values)
            for module in OPTIONAL_MODULES - {p.name for p in self.install.modules.iterdir()}:
                text = text.replace(f"load => {module}\n", "")  # not in this install
            (self.folder / "etc" / template.name).write_text(text, encoding="utf-8")
        # as shipped: a broken snippet must fail the live tests
        snippet = self.folder / "etc" / "extensions-ccshortlink.conf"
        shutil.copy(SHIPPED / snippet.name, snippet)
        if self._lookup_port is not None:  # the one edit its comments ask for: [web] listen
            text = snippet.read_text(encoding="utf-8")
            snippet.write_text(text.replace("127.0.0.1:8080", f"127.0.0.1:{self._lookup_port}"),
                               encoding="utf-8")

    def _tls_lines(self) -> str:
        """manager.conf's [general] TLS lines, as the README tells an admin to write them."""
        if self.tls is None:
            return ""
        return (f"tlsenable = yes\ntlsbindaddr = 127.0.0.1:{self.ami_tls_port}\n"
                f"tlscertfile = {self.tls.cert}\ntlsprivatekey = {self.tls.key}")

    async def start(self, timeout: float = 30.0) -> None:
        """Start it in the foreground and wait for FullyBooted on the admin AMI connection."""
        if not (self.folder / "etc" / "asterisk.conf").exists():
            self.write_config()
        console = self.console.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.net.command([str(self.install.binary), "-f", "-n", "-C",
                                   str(self.folder / "etc" / "asterisk.conf")]),
                stdin=asyncio.subprocess.DEVNULL, stdout=console, stderr=console)
        finally:
            console.close()
        async with asyncio.timeout(timeout):
            self.admin = await self._admin_when_listening()
            await self.admin.wait_event("FullyBooted", timeout=timeout)

    async def _admin_when_listening(self) -> AmiAdmin:
        while True:
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(f"Asterisk exited {self.process.returncode}; see "
                                     f"{self.console} and {self.folder / 'log' / 'full'}")
            try:
                return await AmiAdmin.login(self.net, self.ports.ami, *ADMIN)
            except (OSError, EOFError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.05)  # not listening yet: the only poll, bounded by start()

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> None:
        """End it by pid: SIGTERM is a clean stop, SIGKILL a crash (no Hangup for its calls)."""
        if self.admin is not None:
            await self.admin.close()
            self.admin = None
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def crash(self) -> None:
        await self.stop(signal.SIGKILL)

    async def restart(self) -> None:
        await self.stop()
        await self.start()
