"""Logs: numbers masked in any layout, and every line the daemon writes is one JSON object."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from ccshortlink.core.privacy import clip, mask_number, mask_text
from ccshortlink.ops.logs import configure_logging, get_logger
from tests.support.daemon import start_peers
from tests.support.smsc_peer import SmscFactory

SPACED = ["138 0013 8000", "138-0013-8000", "138.0013.8000", "(+86) 138 0013 8000",
          "+86 138-0013-8000", "+86 (0) 138 0013 8000", "+8613800138000", "13800138000",
          "020-8888-0000", "(020) 8888 0000", "+1 (415) 555-0100"]


@pytest.mark.parametrize("number", SPACED)
def test_numbers_in_any_layout_are_masked_in_free_text(number: str) -> None:
    text = f"GET /{number}?x=1 from {number}, again:{number}."
    masked = mask_text(text)
    digits = "".join(c for c in number if c.isdigit())
    assert number not in masked and digits[-8:-4] not in masked.replace(" ", "")
    assert digits not in "".join(c for c in masked if c.isdigit())
    assert masked.count("*") >= 3 * 4
    assert mask_text(masked) == masked  # masking twice changes nothing


def test_the_masked_number_keeps_its_layout_and_its_last_four_digits() -> None:
    assert mask_text("call 138 0013 8000 now") == "call 138 **** 8000 now"
    assert mask_text("(+86) 138-0013-8000") == "(+86) 138-****-8000"
    assert mask_text("to=+8613800138000") == "to=+86138****8000"
    assert mask_text("PJSIP/13800138000-0000001;2") == "PJSIP/13800******-***0001;2"
    assert mask_number("+8613800138000") == "+86138****8000"  # the old name, the old form


@pytest.mark.parametrize("text", [
    "2026-11-23 18:53:48", "2026-11-23T18:53:48.123456+00:00", "on (2026-11-23) at 18:53",
    "linkedid 1795460028.0 ended", "uniqueid=1700000000.123456", "10.20.30.40:5060",
    "peer 192.168.100.200 port 38321", "took 1234.5 ms", "port 8080", "CS1001 ext 1001",
    "v3.14.5", "42 calls, 3,200 handled", "1,048,576 bytes", "retry in 30 s (attempt 12)",
])
def test_dates_addresses_ids_and_counts_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_digits_glued_to_words_or_decimals_are_still_masked() -> None:
    assert "0013" not in mask_text("id13800138000x")
    assert "0013" not in mask_text("0.13800138000")
    assert "0013" not in mask_text("2026-11-23 13800138000")
    assert "0013" not in mask_text("10.0.0.1 13800138000")
    assert "0013" not in mask_text("1700000000.13800138000")


def test_clipped_text_is_masked_before_the_cut() -> None:
    path = "/" + "a" * 65 + "(+86) 138 0013 8000"
    assert "0013" in mask_text(path[:80])  # cut first: the middle digits pass as "last four"
    assert "0013" not in clip(path, 80) and len(clip(path, 80)) == 80


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def configured(stream: io.StringIO, json: bool | None = None) -> Iterator[io.StringIO]:
    """configure_logging for one test, then the process as pytest had it."""
    hooks = sys.excepthook, threading.excepthook
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("info", stream=stream, json=json)
    try:
        yield stream
    finally:
        sys.excepthook, threading.excepthook = hooks
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    with configured(io.StringIO(), json=True) as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_string_in_an_event_is_masked_ids_and_secrets_kept_apart(
        captured: io.StringIO) -> None:
    try:
        raise ValueError("no route to (+86) 138 0013 8000")
    except ValueError:
        get_logger().exception(
            "card_missing", path="/138-0013-8000", linkedid="1795460028.0",
            nested={"to": ["+86 138.0013.8000", 5, None], "+8613800138000": "key"},
            blob=b"13800138000", password="hunter2", code="Kd7mPq2xZ9",
            when="2026-11-23 18:53:48", uniqueid="138 0013 8000", message_id="1234567890")
    [line] = lines(captured)
    text = json.dumps(line, ensure_ascii=False)
    assert "0013" not in text and "hunter2" not in text
    assert line["event"] == "card_missing" and line["linkedid"] == "1795460028.0"
    assert line["code"] == "Kd7mPq2xZ9" and line["when"] == "2026-11-23 18:53:48"
    # an SMSC's message id is an identifier; a malformed AMI uniqueid is just text
    assert line["message_id"] == "1234567890" and line["uniqueid"] == "138 **** 8000"
    assert line["nested"]["to"] == ["+86 138.****.8000", 5, None]
    assert "ValueError: no route to (+86) 138 **** 8000" in line["exception"]


def test_library_lines_and_their_tracebacks_are_json_events(captured: io.StringIO) -> None:
    try:
        raise RuntimeError("bad request line GET /138 0013 8000")
    except RuntimeError:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s",
                                                      "127.0.0.1")
    logging.getLogger("asyncio").error("Task exception was never retrieved %s", "+8613800138000")
    logging.getLogger("aiohttp.access").warning("%s", "GET /138-0013-8000",
                                                extra={"first_line": "GET /13800138000"})
    # a library's own bug in its format arguments (kept away from pytest's own handler)
    broken_logger = logging.getLogger("panoramisk.broken")
    broken_logger.propagate = False
    broken_logger.handlers = [h for h in logging.getLogger().handlers
                              if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)]
    broken_logger.warning("bad %d", "args")
    logging.getLogger("aiohttp.web").info("below the library threshold")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated for 13800138000", DeprecationWarning, stacklevel=1)
    server, loop, access, broken, warned = lines(captured)
    assert "0013" not in captured.getvalue()
    assert server["event"] == "library_log" and server["logger"] == "aiohttp.server"
    assert server["level"] == "error" and server["timestamp"].endswith("Z")
    assert server["exception"].startswith("Traceback") and "138 **** 8000" in server["exception"]
    assert loop["logger"] == "asyncio" and "+86138****8000" in loop["message"]
    assert access["event"] == "http_access" and access["first_line"] == "GET /138****8000"
    assert broken["message"] == "log_format_failed" and "TypeError" in broken["error"]
    assert warned["logger"] == "py.warnings" and "138****8000" in warned["message"]


def test_an_uncaught_exception_is_one_json_line(captured: io.StringIO) -> None:
    try:
        raise KeyError("13800138000")
    except KeyError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    thread = threading.Thread(target=lambda: int("+86 138-0013-8000"))
    thread.start()
    thread.join()
    main, other = lines(captured)
    assert main["event"] == "uncaught_exception" and "138****8000" in main["exception"]
    assert other["event"] == "uncaught_exception" and "138-****-8000" in other["exception"]


def test_a_terminal_gets_the_console_renderer() -> None:
    with configured(_Terminal()) as stream:
        get_logger().info("daemon_ready", to="138 0013 8000")
        logging.getLogger("aiohttp.server").warning("hello")
    first, second = stream.getvalue().splitlines()
    assert "daemon_ready" in first and "138 **** 8000" in first and not first.startswith("{")
    assert "library_log" in second and "aiohttp.server" in second


# (within the 60 characters amiprotocol logs of a malformed frame)
MALFORMED_AMI = b"Event: Newchannel\r\nCallerIDNum (+86) 138-0013-8000\r\n\r\n"
RAW_REQUESTS = [
    b"GET /x HTTP/1.1\r\nHost: a\r\nBad Header 138 0013 8000\r\n\r\n",  # aiohttp's traceback
    b"GET /138%200013%208000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",  # a 404 path
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # TLS to plain HTTP
    b"GET /(+86)-138-0013-8000 HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"\x00\xff garbage 13800138000\r\n\r\n",
]


async def _poke(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_the_running_daemon_writes_only_json_lines(tmp_path: Path,
                                                         smsc_factory: SmscFactory) -> None:
    """Garbage over HTTP and a malformed AMI frame: every stdout/stderr line is a JSON event."""
    peers = await start_peers(smsc_factory, [MALFORMED_AMI])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccshortlink", "run", "-c", str(peers.config(tmp_path)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    stderr = process.stderr
    assert stderr is not None
    seen: list[str] = []

    async def read_until(*marks: str) -> None:
        async with asyncio.timeout(20):
            while not all(any(mark in line for line in seen) for mark in marks):
                seen.append((await stderr.readline()).decode())
                assert seen[-1], "".join(seen)

    try:
        await read_until('"daemon_ready"', '"ami_frame_malformed"')
        port = next(json.loads(line)["port"] for line in seen if '"web_listening"' in line)
        answers = [await _poke(port, raw) for raw in RAW_REQUESTS]
        statuses = [answer.split(b"\r\n", 1)[0][9:12] for answer in answers]
        assert statuses[:2] == [b"400", b"404"], answers
        await read_until('"aiohttp.server"', '"card_missing"')
    finally:
        process.terminate()
        out, err = await asyncio.wait_for(process.communicate(), 20)
        await peers.ami.stop()
    text = "".join(seen) + err.decode() + out.decode()
    events = [json.loads(line) for line in text.splitlines()]  # raises on any raw line
    assert all(isinstance(e.get("event"), str) and e["event"] for e in events)
    assert process.returncode == 0, text[-3000:]
    names = [e["event"] for e in events]
    assert "ami_frame_malformed" in names and "card_missing" in names
    [error] = [e for e in events if e.get("logger") == "aiohttp.server"][:1]
    assert "Traceback" in error["exception"] and "BadHttpMessage" in error["exception"]
    assert "0013" not in text and "13800138000" not in text
