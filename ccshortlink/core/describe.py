"""One line naming an exception for a log field: its type, and its message when it has one."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    """`ConnectionResetError: [Errno 104] ...`, or the bare type name when the message is empty
    (an empty `TimeoutError: ` would read as if something had been cut off)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
