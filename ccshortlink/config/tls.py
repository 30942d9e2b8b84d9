"""The TLS keys [ami] and [smpp] share: on or off, which CA to trust, which name to check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccshortlink.config.reader import Reader

TLS_VERSIONS = ("1.2", "1.3")
TLS_KEYS = ("tls_ca_file", "tls_server_name", "tls_verify", "tls_min_version")
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_MAX_CA_FILE = 10 << 20  # a bundle of every public CA is about 250 KiB


@dataclass(frozen=True)
class TlsConfig:
    """How to open one link over TLS; a section without `tls = true` has none."""

    server_name: str  # the name (or IP address) the peer's certificate must carry
    ca_file: Path | None = None  # None: the system's trusted CAs
    verify: bool = True  # check the certificate chain and the server name
    min_version: str = "1.2"


def read_tls(section: Reader, host: str, base: Path) -> TlsConfig | None:
    """The section's TLS settings, or None for plain TCP (the default); problems are listed."""
    enabled = section.flag("tls", False)
    ca_file = section.text("tls_ca_file", "")
    server_name = section.text("tls_server_name", "").strip()
    verify = section.flag("tls_verify", True)
    min_version = section.text("tls_min_version", "1.2")
    name = f"[{section.section}]"
    if min_version not in TLS_VERSIONS:
        section.problems.append(f"{name} tls_min_version must be \"1.2\" or \"1.3\", "
                                f"got {min_version!r}")
    if not enabled:
        # A CA file without `tls = true` would send the login in clear to someone who
        # believes it is protected: say so instead of ignoring the key.
        present = [key for key in TLS_KEYS if key in section.table]
        if present:
            section.problems.append(f"{name} {', '.join(present)} set but tls is off: "
                                    "add tls = true, or remove them")
        return None
    if any(c.isspace() for c in server_name) or "/" in server_name:
        section.problems.append(f"{name} tls_server_name must be a host name or an IP address, "
                                f"got {server_name!r}")
    ca_path = None
    if ca_file:
        ca_path = Path(ca_file).expanduser()
        ca_path = ca_path if ca_path.is_absolute() else base / ca_path
        problem = ca_file_problem(ca_path)
        if problem:
            section.problems.append(f"{name} tls_ca_file {ca_path}: {problem}")
        if not verify:
            section.problems.append(f"{name} tls_ca_file is unused with tls_verify = false: "
                                    "remove one of them")
    return TlsConfig(server_name=server_name or host, ca_file=ca_path, verify=verify,
                     min_version=min_version)


def ca_file_problem(path: Path) -> str | None:
    """Why `path` cannot be the CA file (PEM certificates), or None."""
    try:
        if not path.is_file():
            return "not found" if not path.exists() else "is not a regular file"
        with path.open("rb") as file:
            head = file.read(_MAX_CA_FILE)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if _PEM_CERTIFICATE.encode() not in head:
        return f"has no PEM certificate (no {_PEM_CERTIFICATE} line)"
    return None
