"""structlog setup: JSON lines off a terminal, console on one, phone numbers masked."""

from __future__ import annotations

import logging
import re
import sys
import threading
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from ccshortlink.core.describe import describe
from ccshortlink.core.privacy import mask_text

Logger = FilteringBoundLogger

# Identifiers we or the SMSC mint (an SMSC's message ids are often long decimal numbers),
# shown as they are when they look like one token. Timestamps and linkedids need no
# exemption: core.privacy's rules keep them.
_ID_KEYS = frozenset({"code", "sms_id", "message_id", "message_ids", "sequence"})
_ID_TOKEN = re.compile(r"[\w.:+-]{1,64}")
_SECRET_KEYS = frozenset({"secret", "password", "api_token", "token", "authorization"})


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {_mask(k): "***" if k in _SECRET_KEYS else _mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_mask(v) for v in value]
    # Anything else would reach the renderer as repr(): mask that text instead.
    return mask_text(repr(value))


def _is_id(key: str, value: Any) -> bool:
    if key not in _ID_KEYS:
        return False
    if isinstance(value, (list, tuple)):
        return all(_is_id(key, v) for v in value)
    return not isinstance(value, str) or _ID_TOKEN.fullmatch(value) is not None


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: no full phone number and no secret ever leaves the process."""
    for key, value in list(event_dict.items()):
        if key in _SECRET_KEYS:
            event_dict[key] = "***"
        elif not _is_id(key, value):
            event_dict[key] = _mask(value)
    return event_dict


def _library_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A stdlib record (aiohttp, asyncio, panoramisk, smpplib) as one of our events."""
    record: logging.LogRecord = event_dict["_record"]
    event_dict["message"] = event_dict.pop("event", "")
    event_dict["event"] = "http_access" if record.name == "aiohttp.access" else "library_log"
    event_dict["logger"] = record.name
    return event_dict


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """ProcessorFormatter that never lets a broken record print a raw traceback."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            return super().format(record)
        except Exception as exc:  # bad format arguments: say so, as JSON
            fallback = logging.makeLogRecord({"name": record.name, "levelno": logging.ERROR,
                                              "levelname": "ERROR", "msg": "log_format_failed",
                                              "args": (), "exc_info": None})
            fallback.error = describe(exc)
            return super().format(fallback)


def configure_logging(level: str = "info", *, stream: TextIO | None = None,
                      json: bool | None = None) -> None:
    """Install the process-wide structlog configuration, for our events and every library's."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    tail: list[Processor] = [structlog.processors.format_exc_info, redact, renderer]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars,
                    structlog.processors.add_log_level, stamp, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging: the same timestamp, masking and renderer, so
    # every line on stderr (aiohttp's tracebacks included) is one JSON object.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter(
        foreign_pre_chain=[structlog.processors.add_log_level, stamp,
                           structlog.stdlib.ExtraAdder(), _library_event],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail]))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, _Formatter)]:
        root.removeHandler(old)  # ours from an earlier call; others' handlers stay theirs
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries stay quiet below a warning
    logging.captureWarnings(True)  # Python warnings too, instead of raw text
    # smpplib warns for every vendor TLV in a receipt; our own smpp_* events say what matters.
    logging.getLogger("smpplib").setLevel(logging.ERROR)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(
        args.exc_type, args.exc_value, args.exc_traceback)


def _log_uncaught(kind: type[BaseException], exc: BaseException | None,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt) and exc is not None:
        sys.__excepthook__(kind, exc, tb)  # Ctrl-C at a terminal stays as Python shows it
        return
    structlog.get_logger().critical("uncaught_exception", exc_info=(kind, exc, tb))


def get_logger(**initial: Any) -> Logger:
    """A bound logger; pass it down through constructors."""
    logger: Logger = structlog.get_logger(**initial)
    return logger
