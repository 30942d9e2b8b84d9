"""TLS for the links to the PBX and the SMSC: the client context, and a failure in plain words."""

from __future__ import annotations

import ssl

from ccshortlink.config.tls import TlsConfig

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsSetupError(OSError):
    """The CA file could not be loaded (changed since the config was checked): retried later."""


def client_context(tls: TlsConfig) -> ssl.SSLContext:
    """A fresh client context; made per connection attempt, so a replaced CA file is picked up."""
    try:
        context = ssl.create_default_context(
            cafile=str(tls.ca_file) if tls.ca_file is not None else None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise TlsSetupError(f"TLS: tls_ca_file {tls.ca_file} unusable ({reason})") from None
    context.minimum_version = _VERSIONS.get(tls.min_version, ssl.TLSVersion.TLSv1_2)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe_tls_failure(exc: BaseException) -> str | None:
    """Why a TLS connection failed, with the setting to look at; None when not a TLS failure."""
    if isinstance(exc, TlsSetupError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or exc.reason or "verification failed"
        hint = "tls_server_name" if "mismatch" in message.lower() else "tls_ca_file"
        return f"TLS certificate refused: {message} (check {hint})"
    if isinstance(exc, TimeoutError) and "handshake" in str(exc):  # ssl's own wording
        return "TLS handshake failed: no answer in time (is this port plain TCP, not TLS?)"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or type(exc).__name__
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return f"TLS handshake failed: {reason} (is this port plain TCP, not TLS?)"
        return f"TLS handshake failed: {reason}"
    return None
