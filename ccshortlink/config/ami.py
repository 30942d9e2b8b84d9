"""The [ami] section, or several [[ami]] tables: how to reach each PBX's Manager Interface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccshortlink.config.reader import HOUR, Reader
from ccshortlink.config.tls import TlsConfig, read_tls
from ccshortlink.core.agents import PBX_NAME

DEFAULT_PBX = "default"  # the name of the one PBX a plain [ami] table describes
# A PBX name (core.agents.PBX_NAME) is a metric label, a word in logs and `trace`, and a
# prefix in the agents file ("site-a:1001").


@dataclass(frozen=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_max: float = 30.0
    # Event classes asked for at login: enough for calls, queues and UserEvent.
    events: str = "call,agent,user,cdr"
    tls: TlsConfig | None = None  # None: plain TCP
    name: str = DEFAULT_PBX  # which PBX: unique among the [[ami]] tables

    def __repr__(self) -> str:  # never let the secret reach a log line
        return (f"AmiConfig(name={self.name!r}, host={self.host!r}, port={self.port}, "
                f"username={self.username!r})")


def read_ami(ami: Reader, base: Path = Path("."), *, named: bool = False) -> AmiConfig:
    """`base` is the config file's folder: a relative tls_ca_file is found from there.

    `named`: one of several [[ami]] tables, which must each say which PBX it is.
    """
    name = ami.text("name", DEFAULT_PBX, required=named)
    if not PBX_NAME.fullmatch(name):
        ami.problems.append(f"[{ami.section}] name must be lowercase letters, digits and "
                            f"hyphens (at most 32, e.g. \"site-a\"), got {name!r}")
    host = ami.text("host", "127.0.0.1", required=True)
    return AmiConfig(
        host=host,
        port=ami.integer("port", 5038, minimum=1, maximum=65535, required=True),
        username=ami.text("username", required=True),
        secret=ami.text("secret", required=True),
        ping_interval=ami.number("ping_interval", 10.0, minimum=0.05, maximum=HOUR),
        ping_timeout=ami.number("ping_timeout", 5.0, minimum=0.05, maximum=600),
        reconnect_max=ami.number("reconnect_max", 30.0, minimum=0.1, maximum=HOUR),
        events=ami.text("events", "call,agent,user,cdr", max_length=200),
        tls=read_tls(ami, host, base),
        name=name,
    )


def read_pbxs(data: dict[str, Any], base: Path,
              problems: list[str]) -> tuple[tuple[AmiConfig, ...], list[Reader]]:
    """Every PBX: the one plain [ami] table (named `default` unless it says), or each [[ami]].

    Returns the readers too, so the caller reports their unknown keys with the others.
    """
    raw = data.get("ami")
    if not isinstance(raw, list):
        reader = Reader(data, "ami", problems)
        return (read_ami(reader, base),), [reader]
    if not raw:
        problems.append("[[ami]] lists no PBX: add at least one [[ami]] table")
    pbxs: list[AmiConfig] = []
    readers: list[Reader] = []
    for index, table in enumerate(raw, 1):
        if not isinstance(table, dict):
            problems.append(f"[[ami]] item {index} must be a table")
            continue
        name = table.get("name")
        # Each table's problems say which PBX they are about, by name when it has a good one.
        label = f'ami "{name}"' if isinstance(name, str) and PBX_NAME.fullmatch(name) \
            else f"ami #{index}"
        reader = Reader({label: table}, label, problems)
        readers.append(reader)
        pbxs.append(read_ami(reader, base, named=True))
    _check_distinct(pbxs, problems)
    return tuple(pbxs), readers


def _check_distinct(pbxs: list[AmiConfig], problems: list[str]) -> None:
    names: set[str] = set()
    places: dict[tuple[str, int], str] = {}
    for pbx in pbxs:
        if pbx.name in names:
            problems.append(f'[ami "{pbx.name}"] name is used by another [[ami]] table: '
                            "each PBX needs its own name")
        names.add(pbx.name)
        # The same Asterisk listed twice would hand every call in twice: two cards per call.
        first = places.setdefault((pbx.host.lower(), pbx.port), pbx.name)
        if first != pbx.name:
            problems.append(f'[ami "{pbx.name}"] {pbx.host}:{pbx.port} is also '
                            f'[ami "{first}"]\'s: one PBX listed twice would send every '
                            "card twice")
