"""What the use cases need from the outside world, as typing.Protocols the adapters satisfy."""

from __future__ import annotations


class SubmitRejected(Exception):
    """The SMS gateway permanently refused a part of the message: retrying will not help."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"SMSC rejected submit_sm with status 0x{status:02X}")


class GatewayClosed(Exception):
    """The SMS gateway is closed (or closing); the message was not fully submitted."""
