"""Rules on what a config value means: SMPP 3.4 lengths, proxy networks, the listen address."""

from __future__ import annotations

import ipaddress
from typing import Any

# SMPP 3.4 section 5.2: C-Octet Strings, the NUL not counted. An alphanumeric sender (TON 5)
# is at most 11 characters on the GSM side (3GPP 23.040 TP-OA), whatever the SMSC accepts.
SMPP_LIMITS = {"system_id": 15, "password": 8, "system_type": 12, "source_addr": 20}
ALPHANUMERIC_SENDER_MAX = 11


def check_smpp_lengths(smpp: dict[str, Any], problems: list[str]) -> None:
    """SMPP 3.4 field lengths; an alphanumeric sender's 11 characters."""
    for key, limit in SMPP_LIMITS.items():
        octets = len(str(smpp[key]).encode("utf-8"))
        if octets > limit:
            problems.append(f"[smpp] {key} is {octets} bytes, SMPP 3.4 allows at most "
                            f"{limit} (the SMSC would see it cut short)")
    sender = str(smpp["source_addr"])
    if smpp["source_addr_ton"] == 5 and len(sender) > ALPHANUMERIC_SENDER_MAX:
        hint = " (a number: set source_addr_ton = 1 or 3)" if sender.isdigit() else ""
        problems.append(f"[smpp] source_addr is {len(sender)} characters: an "
                        f"alphanumeric sender (source_addr_ton = 5) shows at most "
                        f"{ALPHANUMERIC_SENDER_MAX} on a phone{hint}")


def check_networks(values: tuple[str, ...], problems: list[str]) -> None:
    """Each trusted proxy is an address or a network (host bits allowed: 10.0.0.1/8)."""
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            problems.append(f"[web] trusted_proxies: {value!r} is not an IP address or "
                            f"CIDR network (e.g. 127.0.0.1 or 10.0.0.0/8)")


def parse_listen(value: str, problems: list[str]) -> tuple[str, int]:
    """HOST:PORT ([::1]:8080 for IPv6)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        problems.append(f"[web] listen must be HOST:PORT, got {value!r}")
        return "127.0.0.1", 8080
    return host.strip("[]"), int(port)
