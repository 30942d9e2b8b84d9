"""Agents' presence from the PBX's device and queue events: free, busy, away or unknown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ccshortlink.core.vocab import Presence

# DeviceStateChange State (devicestate.c's names).
_DEVICE_STATES = {
    "NOT_INUSE": Presence.FREE,
    "INUSE": Presence.BUSY, "BUSY": Presence.BUSY, "RINGING": Presence.BUSY,
    "RINGINUSE": Presence.BUSY, "ONHOLD": Presence.BUSY,
    "UNAVAILABLE": Presence.AWAY, "INVALID": Presence.AWAY,
    "UNKNOWN": Presence.UNKNOWN,
}
# ExtensionStatus Status: the hint's state bits (0 idle, 1 in use, 2 busy, 4 unavailable,
# 8 ringing, 16 on hold; sums of them), -1 no hint.
_EXTENSION_STATES = {0: Presence.FREE, 4: Presence.AWAY, -1: Presence.UNKNOWN}
# QueueMemberStatus Status: the member's device state (AST_DEVICE_*).
_MEMBER_STATES = {0: Presence.UNKNOWN, 1: Presence.FREE, 2: Presence.BUSY, 3: Presence.BUSY,
                  4: Presence.AWAY, 5: Presence.AWAY, 6: Presence.BUSY, 7: Presence.BUSY,
                  8: Presence.BUSY}


def device_extension(device: str) -> str:
    """'1001' from 'PJSIP/1001', 'SIP/1001', 'Local/1001@from-queue/n' or a bare '1001'."""
    _, slash, resource = device.partition("/")
    name = resource if slash else device
    return name.split("@", 1)[0].split("/", 1)[0]


def presence_of_event(event: Mapping[str, str]) -> tuple[str, Presence] | None:
    """(extension, presence) an event tells of, or None for any other event."""
    name = event.get("Event", "")
    if name == "DeviceStateChange":
        device = event.get("Device", "")
        if not device or device.lower().startswith(("queue:", "custom:", "park")):
            return None
        return device_extension(device), _DEVICE_STATES.get(
            event.get("State", "").upper(), Presence.UNKNOWN)
    if name == "ExtensionStatus":
        exten = event.get("Exten", "")
        status = _integer(event.get("Status", ""))
        if not exten or status is None:
            return None
        return exten, _EXTENSION_STATES.get(status, Presence.BUSY if status > 0
                                            else Presence.UNKNOWN)
    if name == "QueueMemberStatus":
        interface = event.get("StateInterface") or event.get("Interface", "")
        status = _integer(event.get("Status", ""))
        if not interface or status is None:
            return None
        if event.get("Paused", "0") == "1":
            return device_extension(interface), Presence.AWAY
        return device_extension(interface), _MEMBER_STATES.get(status, Presence.UNKNOWN)
    return None


def combine(states: Iterable[Presence]) -> Presence:
    """An agent's presence from its devices': any busy → busy; any free → free; any away
    → away; else unknown."""
    seen = set(states)
    for presence in (Presence.BUSY, Presence.FREE, Presence.AWAY):
        if presence in seen:
            return presence
    return Presence.UNKNOWN


class PresenceBook:
    """Each PBX's last known state of every extension its events named."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], Presence] = {}

    def on_event(self, pbx: str, event: Mapping[str, str]) -> Presence | None:
        """Note what `event` says; the extension's new presence, None when it says nothing."""
        told = presence_of_event(event)
        if told is None:
            return None
        extension, presence = told
        self._states[(pbx, extension)] = presence
        return presence

    def forget(self, pbx: str) -> None:
        """The PBX's link went down: what we knew of it may be stale."""
        for key in [key for key in self._states if key[0] == pbx]:
            del self._states[key]

    def of(self, pbx: str, extensions: Iterable[str]) -> Presence:
        """The best of the extensions' states on `pbx` (bare extensions)."""
        return combine(self._states[(pbx, ext)] for ext in extensions
                       if (pbx, ext) in self._states)


def _integer(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None
