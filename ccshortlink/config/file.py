"""Read a config file as TOML: any file an admin can point at is data or one clear refusal."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

from ccshortlink.config.problems import ProblemsError


class ConfigError(ProblemsError):
    """The configuration is unusable; `problems` lists every reason."""


MAX_FILE_BYTES = 1 << 20  # a config file is a few kilobytes; /dev/zero is not one


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed table, or ConfigError naming the file and what is wrong with it."""

    def refuse(reason: str) -> ConfigError:
        return ConfigError(str(path), [reason])

    try:
        # stat first: opening a FIFO or a device would block or never end
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise refuse("is a directory, not a configuration file")
        if not stat.S_ISREG(mode):
            raise refuse("is not a regular file")
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise refuse("file not found") from None
    except PermissionError:
        raise refuse("permission denied: the file cannot be read by this user") from None
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise refuse(f"larger than {MAX_FILE_BYTES // 1024} KiB: not a configuration file")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # Notepad's byte-order mark
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise refuse(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line} "
                     f"(save the file as UTF-8)") from None
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:  # ValueError: a 5,000-digit number
        raise refuse(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise refuse("not valid TOML: nested too deeply") from None
