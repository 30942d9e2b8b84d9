"""The PBXs' AMI sessions by name, as the call-backs ask them (app.ports.PbxActions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ccshortlink.ami.client import AmiClient
from ccshortlink.app.ports import PbxUnavailable


class PbxSessions:
    """Picks the PBX's client for each action."""

    def __init__(self, names: Sequence[str], clients: Sequence[AmiClient]) -> None:
        self._clients = dict(zip(names, clients, strict=True))

    def is_up(self, pbx: str) -> bool:
        client = self._clients.get(pbx)
        return client is not None and client.connected

    async def originate(self, pbx: str, fields: Mapping[str, str]) -> str | None:
        client = self._clients.get(pbx)
        if client is None:
            raise PbxUnavailable(f"no PBX named {pbx!r}")
        return await client.originate(fields)
