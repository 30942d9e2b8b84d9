"""Check one value of the agents file as written: text, counts, scores, files, extensions."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from ccshortlink.config.agentsyaml import Map, Seq
from ccshortlink.core.agents import PBX_NAME, split_extension
from ccshortlink.core.hours import check_hours

# What a dialled extension can be in Asterisk: digits with * and #, E.164 numbers with a +.
_EXTENSION = re.compile(r"\+?[0-9*#]{0,79}[0-9][0-9*#]{0,79}")
# A channel without its unique suffix: TECH/resource, e.g. PJSIP/desk-ann, Local/1001@queue.
_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}/[A-Za-z0-9_.@:+*#/-]{1,80}")
_COUNT = re.compile(r"[0-9]{1,15}")
_SCORE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?")


def is_channel(text: str) -> bool:
    """TECH/resource, as a channel name without its unique suffix."""
    return _CHANNEL.fullmatch(text) is not None


def check_unknown(entry: Map, known: tuple[str, ...], what: str, where: str,
                  problems: list[str], *, file: str = "") -> None:
    """A problem for each key not in `known`, with the closest known one as a hint.

    At `where`, or at the key's own line when `file` is given.
    """
    for key in entry:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            at = f"{file}:{entry.lines[key]}" if file else where
            problems.append(f"{at}: unknown {what} '{key}'{hint}")


def kind(value: object) -> str:
    """What a value that is not text is, for a message."""
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else "null"


def text_of(entry: Map, key: str, where: str, problems: list[str], *,
            required: bool = False) -> str:
    """The text at `key`, stripped; "" when absent or null."""
    value = entry.get(key)
    if value is None:
        if required:
            problems.append(f"{where}: agent is missing '{key}'")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: '{key}' must be text, got {kind(value)}")
        return ""
    return value.strip()


def hours_of(entry: Map, where: str, problems: list[str]) -> str:
    """The agent's own working hours for call-backs ("" = [callback] hours)."""
    hours = text_of(entry, "hours", where, problems)
    problem = check_hours(hours)
    if problem is not None:
        problems.append(f"{where}: 'hours': {problem}")
    return hours


def count_of(entry: Map, key: str, where: str, problems: list[str]) -> int:
    """A whole number written in digits; 0 when absent."""
    value = entry.get(key)
    if value is None:
        return 0
    if not isinstance(value, str) or not _COUNT.fullmatch(value.strip()):
        shown = repr(value) if isinstance(value, str) else kind(value)
        problems.append(f"{where}: '{key}' must be a whole number >= 0, got {shown}")
        return 0
    return int(value)


# YAML 1.1's booleans, read as the text they are written with (the reader keeps scalars as text).
_FLAGS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def flag_of(entry: Map, key: str, where: str, problems: list[str], default: bool) -> bool:
    """true/false (or yes/no, on/off); `default` when absent."""
    value = entry.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or value.strip().lower() not in _FLAGS:
        shown = repr(value) if isinstance(value, str) else kind(value)
        problems.append(f"{where}: '{key}' must be true or false, got {shown}")
        return default
    return _FLAGS[value.strip().lower()]


def score_of(entry: Map, where: str, problems: list[str]) -> float | None:
    """The 'satisfaction' score, 1 to 5 in plain decimals (no nan, inf or 1e0)."""
    value = entry.get("satisfaction")
    if value is None:
        return None
    if isinstance(value, str) and _SCORE.fullmatch(value.strip()) and 1 <= float(value) <= 5:
        return float(value)
    problems.append(f"{where}: 'satisfaction' must be a score from 1 to 5")
    return None


def file_of(base: Path, value: str, where: str, key: str, problems: list[str]) -> Path | None:
    """An existing file, relative paths taken from the agents file's folder."""
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        problems.append(f"{where}: {key} file not found: {path}")
        return None
    return path


def extensions_of(entry: Map, where: str, file: str, problems: list[str]) -> tuple[str, ...]:
    """The 'extensions' list: each a dialled number or a channel name, as written."""
    raw = entry.get("extensions")
    if not isinstance(raw, Seq) or not raw:
        problems.append(f"{where}: 'extensions' must be a non-empty list")
        return ()
    extensions = []
    for item, line in zip(raw, raw.lines, strict=False):
        text = _qualified(item, f"{file}:{line}", problems)
        if text is None:
            continue
        pbx, bare = split_extension(text)
        if _EXTENSION.fullmatch(bare) or _CHANNEL.fullmatch(bare):
            extensions.append(f"{pbx}:{bare}" if pbx else bare)
            continue
        shown = f"'{item}'" if isinstance(item, str) else f"'{text}'" if text else kind(item)
        hint = ("; one for a single PBX is its [[ami]] name, ':' and the extension "
                "(e.g. 'site-a:1001')") if ":" in text else ""
        problems.append(f"{file}:{line}: extension {shown} is neither digits (e.g. '01001', "
                        f"'*55', '+862088880000') nor a channel name (e.g. 'PJSIP/desk-ann')"
                        f"{hint}")
    return tuple(extensions)


def _qualified(item: object, at: str, problems: list[str]) -> str | None:
    """An extension as text: 'site-a:1001' for {pbx: site-a, extension: '1001'}."""
    if not isinstance(item, Map) or not item.keys() & {"pbx", "extension"}:
        return item.strip() if isinstance(item, str) else ""
    check_unknown(item, ("pbx", "extension"), "extension field", at, problems)
    pbx, extension = item.get("pbx"), item.get("extension")
    if not isinstance(pbx, str) or not PBX_NAME.fullmatch(pbx.strip()):
        problems.append(f"{at}: an extension's 'pbx' must be a PBX name from [[ami]] "
                        "(e.g. 'site-a')")
        return None
    if not isinstance(extension, str) or not extension.strip():
        problems.append(f"{at}: an extension with a 'pbx' needs its 'extension' (e.g. '1001')")
        return None
    return f"{pbx.strip()}:{extension.strip()}"


def items_of(entry: Map, key: str, where: str, problems: list[str]) -> zip[tuple[object, int]]:
    """The items of the list at `key` with their lines; none when absent."""
    raw = entry.get(key)
    if raw is not None and not isinstance(raw, Seq):
        problems.append(f"{where}: '{key}' must be a list")
    return zip(raw, raw.lines, strict=False) if isinstance(raw, Seq) else zip((), (), strict=False)
