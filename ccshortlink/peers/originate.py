"""What Asterisk sends after an async Originate of a call-back, as frames for the AMI peer.

Replayed from real recordings (peers/data/callback-*.ami, the same bytes as
tests/fixtures/10-originate-*.txt): the agent's phone rings, answers, the dialplan dials the
customer through the trunk, they talk, the customer hangs up; or the agent's phone rings out;
or the customer's does. Each replay gets fresh ids and channels, the Originate's ActionID,
CallerID, agent channel and number.
"""

from __future__ import annotations

import itertools
import re
from enum import StrEnum
from importlib import resources

from ccshortlink.peers.transcript import event_name, rewrite_call, split_transcript

_replays = itertools.count(500)  # rewrite_call indexes: apart from the replayed calls' own
# What the recordings were made with (tests/fixtures/actions-sent/10-originate-*.sent.txt)
RECORDED_ACTION_ID = b"ActionID: ccs-cb-1\r\n"
RECORDED_CALLER_ID = "4008008888"
RECORDED_NUMBER = "13800138000"  # the Originate's Exten: the customer's national number
RECORDED_AGENT = "1001"


class CallScript(StrEnum):
    """How the peer's call-back call goes (a knob of AmiPeer)."""

    ANSWERED = "answered"  # the agent answers, then the customer; they talk
    AGENT_NO_ANSWER = "agent_no_answer"
    AGENT_BUSY = "agent_busy"  # not recorded: the no-answer recording with Reason 5 (busy)
    CUSTOMER_NO_ANSWER = "customer_no_answer"


_RECORDINGS = {CallScript.ANSWERED: "callback-answered.ami",
               CallScript.AGENT_NO_ANSWER: "callback-agent-noanswer.ami",
               CallScript.AGENT_BUSY: "callback-agent-noanswer.ami",
               CallScript.CUSTOMER_NO_ANSWER: "callback-customer-noanswer.ami"}


def parse_action(raw: bytes) -> dict[str, str]:
    action: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            action[name.strip()] = value.strip()
    return action


def response_frame(status: str, action_id: str | None, **headers: str) -> bytes:
    lines = [f"Response: {status}"]
    if action_id is not None:
        lines.append(f"ActionID: {action_id}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def device_state(device: str, state: str) -> bytes:
    """A DeviceStateChange as Asterisk sends it (presence)."""
    return (f"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: {device}\r\n"
            f"State: {state}\r\n\r\n").encode()


def callback_call(action: dict[str, str], script: CallScript) -> list[bytes]:
    """The events of the call an Originate `action` starts, as `script` says it goes."""
    raw = (resources.files("ccshortlink.peers") / "data" / _RECORDINGS[script]).read_bytes()
    _, frames = split_transcript(raw)
    device = action.get("Channel", f"SIP/{RECORDED_AGENT}")
    tech, _, extension = device.partition("/")
    frames = rewrite_call([f for f in frames if event_name(f) is not None],  # not its Response
                          index=next(_replays), customer_number=action.get("Exten", ""),
                          agent_extension=extension, original_customer=RECORDED_NUMBER)
    agent_device = re.compile(rf"(?<![A-Za-z])SIP/{re.escape(extension)}(?![0-9])".encode())
    caller_id = action.get("CallerID", "")
    out = []
    for frame in frames:
        frame = frame.replace(RECORDED_ACTION_ID,
                              f"ActionID: {action.get('ActionID', '')}\r\n".encode())
        frame = frame.replace(RECORDED_CALLER_ID.encode(), caller_id.encode())
        if tech != "SIP":
            frame = agent_device.sub(f"{tech}/{extension}".encode(), frame)
        if script == CallScript.AGENT_BUSY and event_name(frame) == "OriginateResponse":
            frame = frame.replace(b"Reason: 3\r\n", b"Reason: 5\r\n")
        out.append(frame)
    return out
