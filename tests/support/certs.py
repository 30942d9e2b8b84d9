"""Throwaway certificates for the TLS tests: a CA, a server certificate it signed, a stranger CA.

Loaded as a plugin: `certs`, one set for the module that asks.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_NAMES = ("localhost", "127.0.0.1")  # what the server certificate is valid for


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA that signed the server certificate (what tls_ca_file points at)
    cert: Path  # the server's certificate (SAN: localhost, 127.0.0.1)
    key: Path  # its private key, unencrypted
    stranger_ca: Path  # a CA that signed nothing here: trusting only it must refuse the server

    def server_context(self) -> ssl.SSLContext:
        """For a Python test server (the AMI replay peer)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def _ca(folder: Path, name: str, subject: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", subject,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


def make_certs(folder: Path) -> Certs:
    """Write a CA, a server certificate for localhost/127.0.0.1 and a stranger CA in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    _ca(folder, "ca", "/CN=ccshortlink test CA")
    _ca(folder, "stranger-ca", "/CN=someone else's CA")
    san = ",".join(f"IP:{n}" if n[0].isdigit() else f"DNS:{n}" for n in SERVER_NAMES)
    (folder / "server.ext").write_text(
        f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        encoding="utf-8")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=folder)
    _openssl("x509", "-req", "-sha256", "-days", "2", "-in", "server.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-extfile",
             "server.ext", cwd=folder)
    # Asterisk may run as another user in the live tests' namespace: let it read them.
    for path in folder.iterdir():
        path.chmod(0o644)
    return Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                 folder / "stranger-ca.pem")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))
