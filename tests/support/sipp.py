"""SIP phones and callers for a live test: SIPp processes, every SIP message kept in a file."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import signal
from pathlib import Path

from tests.support.configfile import ROOT
from tests.support.netns import Loopback

SCENARIOS = ROOT / "tests" / "live" / "asterisk" / "sipp"
HOW_TO_ENABLE = "no sipp for the live tests: install it (Debian: apt-get install sip-tester)"


def sipp_found() -> bool:
    return shutil.which("sipp") is not None


class Sipp:
    """One SIPp process: a phone (UAS, runs until stopped) or a caller (UAC, one call)."""

    _serial = itertools.count(1)

    def __init__(self, name: str, process: asyncio.subprocess.Process, messages: Path) -> None:
        self.name, self.process, self.messages = name, process, messages

    @classmethod
    async def run(cls, net: Loopback, folder: Path, name: str, scenario: str,
                  args: list[str], fill: dict[str, str] | None = None) -> Sipp:
        serial = next(cls._serial)
        base = folder / "sipp" / f"{serial:02d}-{name}"
        base.parent.mkdir(parents=True, exist_ok=True)
        text = (SCENARIOS / f"{scenario}.xml").read_text(encoding="utf-8")
        for key, value in (fill or {}).items():
            text = text.replace(key, value)
        script = base.with_suffix(".xml")
        script.write_text(text, encoding="utf-8")
        messages = base.with_suffix(".messages.txt")
        argv = ["sipp", *args, "-sf", str(script), "-i", "127.0.0.1", "-nostdin",
                "-trace_msg", "-message_file", str(messages),
                "-trace_err", "-error_file", str(base.with_suffix(".errors.txt")),
                "-trace_screen", "-screen_file", str(base.with_suffix(".screen.txt"))]
        log = base.with_suffix(".out.txt").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                *net.command(argv), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=base.parent)
        finally:
            log.close()
        return cls(name, process, messages)

    def sent(self, method: str) -> int:
        """How many requests of `method` (INVITE, BYE…) this SIPp received or sent, by its log."""
        if not self.messages.exists():
            return 0
        text = self.messages.read_text(encoding="utf-8", errors="replace")
        return text.count(f"\n{method} sip:") + text.startswith(f"{method} sip:")

    async def finished(self, timeout: float = 60.0) -> int:
        """Wait for a caller to end its call; its exit code (0: the scenario went as written)."""
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.stop()
            raise AssertionError(f"sipp {self.name} still running after {timeout} s; "
                                 f"see {self.messages}") from None

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
