"""Synthetic AMI calls shaped like the recorded ones, for what the recordings do not show.

Field names, event order and id formats follow the Asterisk 20 transcripts in fixtures/:
FreePBX Local-channel queue members, agent-side hangups, blind and attended transfers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

_ids = itertools.count(1)


@dataclass
class Script:
    """Builds one call's event list channel by channel."""

    epoch: int = 1795470000
    events: list[dict[str, str]] = field(default_factory=list)
    channels: dict[str, dict[str, str]] = field(default_factory=dict)

    def _uid(self) -> str:
        return f"{self.epoch}.{next(_ids)}"

    def new(self, name: str, caller: str, linkedid: str | None = None) -> str:
        uniqueid = self._uid()
        self.channels[name] = {"Channel": name, "Uniqueid": uniqueid,
                               "Linkedid": linkedid or uniqueid, "CallerIDNum": caller,
                               "ConnectedLineNum": "<unknown>"}
        self.emit("Newchannel", name)
        return uniqueid

    def linkedid(self, name: str) -> str:
        return self.channels[name]["Linkedid"]

    def emit(self, event: str, name: str | None = None, **extra: str) -> None:
        frame = {"Event": event}
        if name is not None:
            frame.update(self.channels[name])
        frame.update(extra)
        self.events.append(frame)

    def connect(self, a: str, b: str) -> None:
        self.channels[a]["ConnectedLineNum"] = self.channels[b]["CallerIDNum"]
        self.channels[b]["ConnectedLineNum"] = self.channels[a]["CallerIDNum"]
        self.emit("NewConnectedLine", a)
        self.emit("NewConnectedLine", b)

    def dial(self, caller: str, callee: str, status: str = "ANSWER") -> None:
        dest = {"Dest" + k: v for k, v in self.channels[callee].items()}
        self.emit("DialBegin", caller, DialString=callee.split("/", 1)[1].split("-")[0], **dest)
        self.emit("DialEnd", caller, DialStatus=status, **dest)

    def enter(self, name: str, bridge: str) -> None:
        self.emit("BridgeEnter", name, BridgeUniqueid=bridge)

    def leave(self, name: str, bridge: str) -> None:
        self.emit("BridgeLeave", name, BridgeUniqueid=bridge)

    def hangup(self, name: str) -> None:
        self.emit("Hangup", name, Cause="16")


def direct_call(customer: str, agent_channel: str, *, agent_hangs_up: bool) -> Script:
    """Customer dials the agent directly; either side ends the call."""
    s = Script()
    trunk = f"SIP/trunk-{next(_ids):08x}"
    s.new(trunk, customer)
    s.new(agent_channel, "1001", s.linkedid(trunk))
    s.dial(trunk, agent_channel)
    s.connect(trunk, agent_channel)
    s.enter(agent_channel, "b1")
    s.enter(trunk, "b1")
    first, second = (agent_channel, trunk) if agent_hangs_up else (trunk, agent_channel)
    s.leave(first, "b1")
    s.hangup(first)
    s.leave(second, "b1")
    s.emit("BridgeDestroy", BridgeUniqueid="b1")
    s.hangup(second)
    return s


def freepbx_queue_call(customer: str, *, optimised: bool,
                       members: tuple[str, ...] = ("1001", "1002"),
                       answering: str = "1001") -> Script:
    """Queue with Local/EXT@from-queue/n members ringing all; one answers."""
    s = Script()
    trunk = f"PJSIP/trunk-{next(_ids):08x}"
    s.new(trunk, customer)
    s.emit("Newstate", trunk, ChannelState="6", ChannelStateDesc="Up")
    s.emit("QueueCallerJoin", trunk, Queue="support")
    legs = {}
    for ext in members:
        n = next(_ids)
        one, two = f"Local/{ext}@from-queue-{n:08x};1", f"Local/{ext}@from-queue-{n:08x};2"
        device = f"PJSIP/{ext}-{n:08x}"
        s.new(one, customer, s.linkedid(trunk))
        s.new(two, customer, s.linkedid(trunk))
        s.new(device, ext, s.linkedid(trunk))
        s.emit("AgentCalled", trunk, Interface=f"Local/{ext}@from-queue/n",
               **{"Dest" + k: v for k, v in s.channels[one].items()})
        legs[ext] = (one, two, device)
    for ext, (one, two, device) in legs.items():
        if ext == answering:
            continue
        s.dial(two, device, status="CANCEL")
        s.hangup(device)
        s.hangup(two)
        s.hangup(one)
    one, two, device = legs[answering]
    s.dial(two, device)
    s.connect(two, device)
    s.enter(two, "inner")
    s.enter(device, "inner")
    s.emit("AgentConnect", trunk, Interface=f"Local/{answering}@from-queue/n",
           **{"Dest" + k: v for k, v in s.channels[one].items()})
    s.enter(trunk, "outer")
    s.enter(one, "outer")
    if optimised:
        # Local channel optimisation: the device is swapped into the customer's bridge.
        s.emit("LocalOptimizationBegin", one)
        s.leave(device, "inner")
        s.enter(device, "outer")
        s.leave(one, "outer")
        s.leave(two, "inner")
        s.emit("LocalOptimizationEnd", one)
        s.hangup(one)
        s.hangup(two)
    s.emit("AgentComplete", trunk, Interface=f"Local/{answering}@from-queue/n", TalkTime="42",
           Reason="caller", **{"Dest" + k: v for k, v in s.channels[one].items()})
    s.leave(trunk, "outer")
    s.hangup(trunk)
    if optimised:
        s.leave(device, "outer")
        s.hangup(device)
    else:
        s.leave(one, "outer")
        s.hangup(one)
        s.leave(two, "inner")
        s.leave(device, "inner")
        s.hangup(device)
        s.hangup(two)
    return s


def _talking_with_1001(customer: str) -> tuple[Script, str, str]:
    """A customer bridged with agent 1001 in bridge b1: where both transfers start."""
    s = Script()
    trunk, first = f"SIP/trunk-{next(_ids):08x}", f"SIP/1001-{next(_ids):08x}"
    s.new(trunk, customer)
    s.new(first, "1001", s.linkedid(trunk))
    s.dial(trunk, first)
    s.enter(first, "b1")
    s.enter(trunk, "b1")
    return s, trunk, first


def blind_transfer(customer: str) -> Script:
    """Agent 1001 blind-transfers the customer to 1002 (Asterisk's Local-channel method)."""
    s, trunk, first = _talking_with_1001(customer)
    n = next(_ids)
    one, two = f"Local/1002@from-internal-{n:08x};1", f"Local/1002@from-internal-{n:08x};2"
    s.new(one, "1001", s.linkedid(trunk))
    s.new(two, "1001", s.linkedid(trunk))
    s.emit("BlindTransfer", first, Extension="1002", Result="Success")
    s.leave(first, "b1")
    s.hangup(first)
    s.enter(one, "b1")
    second = f"SIP/1002-{next(_ids):08x}"
    s.new(second, "1002", s.linkedid(trunk))
    s.dial(two, second)
    s.enter(two, "b2")
    s.enter(second, "b2")
    s.leave(trunk, "b1")
    s.hangup(trunk)
    for name, bridge in ((one, "b1"), (two, "b2"), (second, "b2")):
        s.leave(name, bridge)
        s.hangup(name)
    return s


def attended_transfer(customer: str) -> Script:
    """Agent 1001 consults 1002 on a second call, then completes the transfer."""
    s, trunk, first = _talking_with_1001(customer)
    s.emit("Hold", trunk)
    consult, second = f"SIP/1001-{next(_ids):08x}", f"SIP/1002-{next(_ids):08x}"
    s.new(consult, "1001")  # a new call: its own linkedid
    s.new(second, "1002", s.linkedid(consult))
    s.dial(consult, second)
    s.enter(consult, "b2")
    s.enter(second, "b2")
    s.emit("AttendedTransfer", first, Result="Success")
    # Asterisk moves the consulted party into the customer's bridge.
    s.leave(second, "b2")
    s.enter(second, "b1")
    s.leave(first, "b1")
    s.leave(consult, "b2")
    s.hangup(first)
    s.hangup(consult)
    s.emit("Unhold", trunk)
    s.leave(second, "b1")
    s.hangup(second)
    s.leave(trunk, "b1")
    s.hangup(trunk)
    return s


def voicemail_call(customer: str) -> Script:
    """The agent does not answer; the dialplan sends the caller to VoiceMail (no bridge)."""
    s = Script()
    trunk, agent = f"SIP/trunk-{next(_ids):08x}", f"SIP/1001-{next(_ids):08x}"
    s.new(trunk, customer)
    s.new(agent, "1001", s.linkedid(trunk))
    s.dial(trunk, agent, status="NOANSWER")
    s.hangup(agent)
    s.emit("Newstate", trunk, ChannelState="6", ChannelStateDesc="Up")  # VoiceMail() answers
    s.emit("Cdr", None, Channel=trunk, DestinationChannel=agent, Disposition="NO ANSWER",
           BillableSeconds="25", LastApplication="VoiceMail")
    s.hangup(trunk)
    return s


def queue_abandon(customer: str) -> Script:
    """The caller waits in a ringall queue and hangs up before any member answers."""
    s = Script()
    trunk = f"SIP/trunk-{next(_ids):08x}"
    s.new(trunk, customer)
    s.emit("QueueCallerJoin", trunk, Queue="support")
    members = [f"SIP/{ext}-{next(_ids):08x}" for ext in ("1001", "1002")]
    for member in members:
        s.new(member, member[4:8], s.linkedid(trunk))
        s.emit("AgentCalled", trunk, Interface=member.rsplit("-", 1)[0])
    s.emit("QueueCallerAbandon", trunk, Queue="support", HoldTime="20")
    for member in members:
        s.dial(trunk, member, status="CANCEL")
        s.hangup(member)
    s.hangup(trunk)
    return s
