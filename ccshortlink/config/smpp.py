"""The [smpp] section: the SMSC account the SMS go out through."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccshortlink.config.reader import HOUR, Reader
from ccshortlink.config.rules import check_smpp_lengths
from ccshortlink.config.tls import TlsConfig, read_tls


@dataclass(frozen=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    source_addr: str
    source_addr_ton: int = 5  # alphanumeric sender unless configured
    source_addr_npi: int = 0
    system_type: str = ""
    window: int = 10
    max_per_second: float = 100.0
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_max: float = 60.0
    registered_delivery: bool = True
    tls: TlsConfig | None = None  # None: plain TCP

    def __repr__(self) -> str:
        return f"SmppConfig(host={self.host!r}, port={self.port}, system_id={self.system_id!r})"


def read_smpp(smpp: Reader, base: Path = Path(".")) -> SmppConfig:
    """`base` is the config file's folder: a relative tls_ca_file is found from there."""
    host = smpp.text("host", "127.0.0.1", required=True)
    smpp_cfg = SmppConfig(
        host=host,
        port=smpp.integer("port", 2775, minimum=1, maximum=65535, required=True),
        system_id=smpp.text("system_id", required=True),
        password=smpp.text("password", required=True),
        source_addr=smpp.text("source_addr", required=True),
        source_addr_ton=smpp.integer("source_addr_ton", 5, minimum=0, maximum=6),
        source_addr_npi=smpp.integer("source_addr_npi", 0, minimum=0, maximum=18),
        system_type=smpp.text("system_type", ""),
        window=smpp.integer("window", 10, minimum=1, maximum=1000),
        max_per_second=smpp.number("max_per_second", 100.0, minimum=0.1, maximum=1_000_000),
        enquire_link_interval=smpp.number("enquire_link_interval", 30.0, minimum=0.05,
                                          maximum=HOUR),
        response_timeout=smpp.number("response_timeout", 10.0, minimum=0.05, maximum=600),
        reconnect_max=smpp.number("reconnect_max", 60.0, minimum=0.1, maximum=HOUR),
        registered_delivery=smpp.flag("registered_delivery", True),
        tls=read_tls(smpp, host, base),
    )
    check_smpp_lengths(smpp_cfg.__dict__, smpp.problems)
    return smpp_cfg
