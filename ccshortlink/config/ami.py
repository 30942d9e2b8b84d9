"""The [ami] section: how to reach the PBX's Asterisk Manager Interface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccshortlink.config.reader import HOUR, Reader
from ccshortlink.config.tls import TlsConfig, read_tls


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

    def __repr__(self) -> str:  # never let the secret reach a log line
        return f"AmiConfig(host={self.host!r}, port={self.port}, username={self.username!r})"


def read_ami(ami: Reader, base: Path = Path(".")) -> AmiConfig:
    """`base` is the config file's folder: a relative tls_ca_file is found from there."""
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
    )
