"""The exit codes of every `ccshortlink` command, one table (sysexits.h where one fits)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What a command's exit status tells the shell, systemd or a script."""

    OK = 0
    # The command ran but its answer is "no": nothing recorded for a trace, an SMS not queued.
    FAILED = 1
    # A bad argument (an unknown agent, an invalid number), as argparse's own usage errors.
    USAGE = 2
    # EX_TEMPFAIL: a database fault that may pass (a lock, a full disk); nothing was changed.
    TEMPFAIL = 75
    # EX_CONFIG: a file is unusable; systemd's RestartPreventExitStatus keeps it from looping.
    CONFIG = 78
    # 128 + SIGINT, as a shell reports a command stopped with Ctrl-C.
    INTERRUPTED = 130
