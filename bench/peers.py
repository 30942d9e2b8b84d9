"""The SMSCs a benchmark drives (the npm SMSC or the SMS sink) and what they accepted."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.traffic import ROOT

SMSC_JS = ROOT / "tests" / "smsc" / "server.js"
CLOCK_JS = Path(__file__).parent / "smsc_clock.js"
SMPP_USER, SMPP_PASSWORD = "ccshortlink", "bench-pw"
ESM_CLASS_UDHI = 0x40


class JsonLines:
    """Reads what a process appends to a JSON-lines file, a little at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        found = []
        for line in lines:
            if line.startswith(b"{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found


@dataclass
class Delivery:
    """What an SMSC accepted for one customer: every copy of every part, with times."""

    copies: dict[tuple[int | None, int], list[float]] = field(default_factory=dict)
    totals: dict[int | None, int] = field(default_factory=dict)

    def add(self, reference: int | None, total: int, index: int, at: float) -> None:
        self.copies.setdefault((reference, index), []).append(at)
        self.totals[reference] = total

    @property
    def complete_messages(self) -> int:
        """Distinct SMS with every part accepted (a resent copy is not a second SMS)."""
        return sum(1 for ref, total in self.totals.items()
                   if all((ref, i) in self.copies for i in range(1, total + 1)))

    @property
    def duplicate_parts(self) -> int:
        return sum(len(times) - 1 for times in self.copies.values())

    @property
    def completed_at(self) -> float | None:
        """When the first SMS became whole: its last part's first acceptance."""
        for ref, total in self.totals.items():
            firsts = [min(self.copies[(ref, i)]) for i in range(1, total + 1)
                      if (ref, i) in self.copies]
            if len(firsts) == total:
                return max(firsts)
        return None


def concat_info(esm_class: int, octets: bytes) -> tuple[int, int, int] | None:
    """(reference, total, index) of a concatenated part (16- or 8-bit UDH), else None."""
    if not esm_class & ESM_CLASS_UDHI or not octets:
        return None
    udh = octets[1:octets[0] + 1]
    if len(udh) >= 6 and udh[0] == 0x08 and udh[1] == 4:
        return (udh[2] << 8) | udh[3], udh[4], udh[5]
    if len(udh) >= 5 and udh[0] == 0x00 and udh[1] == 3:
        return udh[2], udh[3], udh[4]
    return None


class SmscProcess:
    """The tests' npm SMSC (node tests/smsc/server.js) stamping each line with the wall clock."""

    def __init__(self, folder: Path, *, receipts: bool = True, extra: tuple[str, ...] = ()) -> None:
        self.output = folder / "smsc.jsonl"
        self.args = ["--system-id", SMPP_USER, "--password", SMPP_PASSWORD, *extra]
        if receipts:
            self.args.append("--receipts")
        self.port = 0
        self.by_destination: dict[str, Delivery] = {}
        self.accepted_parts = 0
        self.output.unlink(missing_ok=True)  # a restart appends; a new instance starts afresh
        self._lines = JsonLines(self.output)
        self._process: asyncio.subprocess.Process | None = None

    name = "the SMSC"

    def _command(self) -> tuple[list[str], Path]:
        """The program to run and its working folder."""
        if shutil.which("node") is None:
            raise RuntimeError("node is not installed: run `make venv` on a machine with Node.js")
        return (["node", "-r", str(CLOCK_JS), str(SMSC_JS), "--port", str(self.port), *self.args],
                SMSC_JS.parent)

    async def start(self) -> int:
        command, cwd = self._command()
        with self.output.open("ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                *command, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)
        for _ in range(1500):
            for event in self.poll():
                if event.get("event") == "listening":
                    self.port = int(event["port"])
                    return self.port
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{self.name} did not start; see {self.output}")

    def poll(self) -> list[dict[str, Any]]:
        """Read new output; accepted submit_sm are filed by destination."""
        events = self._lines.read_new()
        for event in events:
            if event.get("event") != "submit_sm" or event.get("status") != 0:
                continue
            octets = bytes.fromhex(event["short_message_hex"])
            info = concat_info(event["esm_class"], octets) or (None, 1, 1)
            destination = "+" + event["destination_addr"].lstrip("+")
            self.by_destination.setdefault(destination, Delivery()).add(
                info[0], info[1], info[2], float(event["t"]))
            self.accepted_parts += 1
        return events

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()

    async def restart(self) -> None:
        await self.kill()
        await self.start()


class SinkProcess(SmscProcess):
    """The in-package SmsSink in a process of its own (bench.sink): no receipts, no JSON work."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, receipts=False)
        self.output = folder / "sink.jsonl"
        self.output.unlink(missing_ok=True)
        self._lines = JsonLines(self.output)

    name = "the SMS sink"

    def _command(self) -> tuple[list[str], Path]:
        return [sys.executable, "-m", "bench.sink", "--port", str(self.port)], ROOT

    def poll(self) -> list[dict[str, Any]]:
        events = self._lines.read_new()
        for event in events:
            if event.get("event") == "sms":
                self.by_destination.setdefault(event["destination"], Delivery()).add(
                    None, 1, 1, float(event["t"]))
                self.accepted_parts += int(event["parts"])
        return events
