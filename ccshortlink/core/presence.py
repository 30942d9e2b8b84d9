"""Agents' presence from the PBX's device and queue events: free, busy, away or unknown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
        member = _member_of_event(event)
        if member is None or member.state is None:
            return None
        return member.extension, Presence.AWAY if member.paused else member.state
    return None


@dataclass(frozen=True)
class _Member:
    """What a queue-member event tells of one member in one queue."""

    extension: str
    queue: str
    state: Presence | None  # None: the event does not say (QueueMemberPause)
    paused: bool | None  # None: the event does not say
    removed: bool = False


_MEMBER_EVENTS = ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause",
                  "QueueMemberRemoved")


def _member_of_event(event: Mapping[str, str]) -> _Member | None:
    name = event.get("Event", "")
    if name not in _MEMBER_EVENTS:
        return None
    interface = event.get("StateInterface") or event.get("Interface", "")
    if not interface:
        return None
    status = _integer(event.get("Status", ""))
    paused = event.get("Paused")
    return _Member(device_extension(interface), event.get("Queue", ""),
                   None if status is None else _MEMBER_STATES.get(status, Presence.UNKNOWN),
                   None if paused is None else paused.strip() == "1",
                   removed=name == "QueueMemberRemoved")


def combine(states: Iterable[Presence]) -> Presence:
    """An agent's presence from its devices': any busy → busy; any free → free; any away
    → away; else unknown."""
    seen = set(states)
    for presence in (Presence.BUSY, Presence.FREE, Presence.AWAY):
        if presence in seen:
            return presence
    return Presence.UNKNOWN


@dataclass
class _Sources:
    """One extension as each source last told it: its device, its hint, each of its queues
    (state, paused). Kept apart so that one source's news does not undo another's: an idle
    phone does not unpause its agent, nor lift a DND the hint shows."""

    device: Presence | None = None
    hint: Presence | None = None
    queues: dict[str, tuple[Presence | None, bool]] = field(default_factory=dict)

    def presence(self) -> Presence:
        states = [s for s in (self.device, self.hint) if s is not None]
        states += [state for state, _ in self.queues.values() if state is not None]
        if Presence.BUSY in states:
            return Presence.BUSY  # on a call (or DND) anywhere
        if self.queues and all(paused for _, paused in self.queues.values()):
            return Presence.AWAY  # paused in every queue it serves: not to be rung
        return combine(states)

    def note_member(self, member: _Member) -> None:
        if member.removed:
            self.queues.pop(member.queue, None)
            return
        state, paused = self.queues.get(member.queue, (None, False))
        self.queues[member.queue] = (member.state if member.state is not None else state,
                                     member.paused if member.paused is not None else paused)


class PresenceBook:
    """Each PBX's last known state of every extension its events named."""

    def __init__(self) -> None:
        self._extensions: dict[tuple[str, str], _Sources] = {}

    def on_event(self, pbx: str, event: Mapping[str, str]) -> Presence | None:
        """Note what `event` says; the extension's new presence, None when it says nothing."""
        member = _member_of_event(event)
        if member is not None:
            sources = self._extensions.setdefault((pbx, member.extension), _Sources())
            sources.note_member(member)
            return sources.presence()
        told = presence_of_event(event)
        if told is None:
            return None
        extension, presence = told
        sources = self._extensions.setdefault((pbx, extension), _Sources())
        if event.get("Event") == "DeviceStateChange":
            sources.device = presence
        else:
            sources.hint = presence
        return sources.presence()

    def forget(self, pbx: str) -> None:
        """The PBX's link went down: what we knew of it may be stale."""
        for key in [key for key in self._extensions if key[0] == pbx]:
            del self._extensions[key]

    def of(self, pbx: str, extensions: Iterable[str]) -> Presence:
        """The best of the extensions' states on `pbx` (bare extensions)."""
        return combine(self._extensions[(pbx, ext)].presence() for ext in extensions
                       if (pbx, ext) in self._extensions)


def _integer(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None
