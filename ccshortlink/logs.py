"""structlog setup: JSON lines off a terminal, console on one, phone numbers masked."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

Logger = FilteringBoundLogger

# A run of 7+ digits, optionally with a leading +: customer numbers in any form.
_NUMBER = re.compile(r"\+?\d{7,}")
# Identifiers that are long digit runs but never phone numbers.
_ID_KEYS = frozenset({"timestamp", "level", "linkedid", "uniqueid", "code", "sms_id",
                      "message_id", "message_ids", "sequence"})
_SECRET_KEYS = frozenset({"secret", "password", "api_token", "token", "authorization"})


def mask_number(number: str) -> str:
    """Keep the country/operator prefix and the last four digits: +86138****8000."""
    digits = number.lstrip("+")
    plus = "+" if number.startswith("+") else ""
    if len(digits) <= 8:
        return plus + "*" * (len(digits) - 2) + digits[-2:]
    keep_head = min(5, len(digits) - 8)  # at least four digits always hidden
    return plus + digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]


def mask_text(text: str) -> str:
    """Mask every phone-number-like run inside free text."""
    return _NUMBER.sub(lambda m: mask_number(m.group(0)), text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: "***" if k in _SECRET_KEYS else _mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_mask(v) for v in value)
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: no full phone number and no secret ever leaves the process."""
    for key, value in list(event_dict.items()):
        if key in _SECRET_KEYS:
            event_dict[key] = "***"
        elif key not in _ID_KEYS:
            event_dict[key] = _mask(value)
    return event_dict


def configure_logging(level: str = "info", *, stream: TextIO | None = None,
                      json: bool | None = None) -> None:
    """Install the process-wide structlog configuration."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries (panoramisk, smpplib, aiohttp) log through stdlib logging: keep them quiet
    # and route what they say through the same masking.
    logging.basicConfig(level=logging.WARNING, stream=stream,
                        format="%(levelname)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_StdlibMask())
    # smpplib warns for every vendor TLV in a receipt; our own smpp_* events say what matters.
    logging.getLogger("smpplib").setLevel(logging.ERROR)


class _StdlibMask(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = ()
        return True


def get_logger(**initial: Any) -> Logger:
    """A bound logger; pass it down through constructors."""
    return structlog.get_logger(**initial)
