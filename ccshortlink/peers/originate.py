"""What Asterisk sends after an async Originate of a call-back, as frames for the AMI peer.

Shaped on the real frames of tests/fixtures/06-local-originate.txt (the same headers, in
the same order: Newchannel, Newstate, OriginateResponse, DialBegin, DialEnd, BridgeEnter,
Cdr before the Hangups), with the agent's channel ringing first and the customer's leg
dialled from it, as the dialplan does for a call-back.
"""

from __future__ import annotations

import itertools
import time
from enum import StrEnum

_uniqueids = itertools.count(1)


class CallScript(StrEnum):
    """How the peer's call-back call goes (a knob of AmiPeer)."""

    ANSWERED = "answered"  # the agent answers, then the customer; they talk
    AGENT_NO_ANSWER = "agent_no_answer"
    AGENT_BUSY = "agent_busy"
    CUSTOMER_NO_ANSWER = "customer_no_answer"


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


def _frame(name: str, privilege: str = "call,all", **headers: str) -> bytes:
    lines = [f"Event: {name}", f"Privilege: {privilege}"]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _channel(channel: str, uniqueid: str, linkedid: str, state: tuple[str, str], *,
             cid: str, exten: str, context: str) -> dict[str, str]:
    return {"Channel": channel, "ChannelState": state[0], "ChannelStateDesc": state[1],
            "CallerIDNum": cid, "CallerIDName": "<unknown>", "ConnectedLineNum": "<unknown>",
            "ConnectedLineName": "<unknown>", "Language": "en", "AccountCode": "",
            "Context": context, "Exten": exten, "Priority": "1", "Uniqueid": uniqueid,
            "Linkedid": linkedid}


def device_state(device: str, state: str) -> bytes:
    """A DeviceStateChange as Asterisk sends it (presence)."""
    return _frame("DeviceStateChange", Device=device, State=state)


def callback_call(action: dict[str, str], script: CallScript, *,
                  talk_seconds: int = 3) -> list[bytes]:
    """The events of the call an Originate `action` starts, as `script` says it goes."""
    base = f"{int(time.time())}"
    agent_uid = f"{base}.{next(_uniqueids)}"
    customer_uid = f"{base}.{next(_uniqueids)}"
    device = action.get("Channel", "PJSIP/1001")
    agent = f"{device}-{next(_uniqueids):08x}"
    customer = f"PJSIP/trunk-{next(_uniqueids):08x}"
    exten, context = action.get("Exten", ""), action.get("Context", "")
    caller_id = action.get("CallerID", "")
    down, ring, up = ("0", "Down"), ("5", "Ringing"), ("6", "Up")
    response = {"ActionID": action.get("ActionID", ""), "Context": context, "Exten": exten,
                "CallerIDNum": caller_id or "<unknown>", "CallerIDName": "<unknown>"}
    frames = [_frame("Newchannel", **_channel(agent, agent_uid, agent_uid, down, cid=caller_id,
                                              exten="s", context="default")),
              device_state(device, "RINGING")]
    if script in (CallScript.AGENT_NO_ANSWER, CallScript.AGENT_BUSY):
        reason = "3" if script == CallScript.AGENT_NO_ANSWER else "5"
        frames += [
            _frame("Hangup", **_channel(agent, agent_uid, agent_uid, ring, cid=caller_id,
                                        exten="s", context="default"),
                   Cause="19" if reason == "3" else "17",
                   Cause_txt="No answer" if reason == "3" else "User busy"),
            device_state(device, "NOT_INUSE" if reason == "3" else "INUSE"),
            _frame("OriginateResponse", **{**response, "Response": "Failure",
                                           "Channel": device, "Reason": reason,
                                           "Uniqueid": "<null>"})]
        return frames
    agent_up = _channel(agent, agent_uid, agent_uid, up, cid=caller_id, exten=exten,
                        context=context)
    customer_ring = _channel(customer, customer_uid, agent_uid, ring, cid=exten, exten=exten,
                             context=context)
    dial = {**agent_up, **{f"Dest{k}": v for k, v in customer_ring.items()}}
    frames += [_frame("Newstate", **agent_up), device_state(device, "INUSE"),
               _frame("OriginateResponse", **{**response, "Response": "Success",
                                              "Channel": agent, "Reason": "4",
                                              "Uniqueid": agent_uid}),
               _frame("Newchannel", **{**customer_ring, "ChannelState": "0",
                                       "ChannelStateDesc": "Down"}),
               _frame("DialBegin", **dial, DialString=f"trunk/{exten}")]
    cdr = {"AccountCode": "", "Source": caller_id, "Destination": exten,
           "DestinationContext": context, "CallerID": f"<{caller_id}>", "Channel": agent,
           "DestinationChannel": customer, "LastApplication": "Dial", "LastData": exten,
           "StartTime": "", "AnswerTime": "", "EndTime": ""}
    hangups = [_frame("Hangup", **_channel(customer, customer_uid, agent_uid, up, cid=exten,
                                           exten=exten, context=context),
                      Cause="16", Cause_txt="Normal Clearing"),
               _frame("Hangup", **agent_up, Cause="16", Cause_txt="Normal Clearing"),
               device_state(device, "NOT_INUSE")]
    if script == CallScript.CUSTOMER_NO_ANSWER:
        return frames + [_frame("DialEnd", **dial, DialStatus="NOANSWER"),
                         _frame("Cdr", "cdr,all", **cdr, Duration="45", BillableSeconds="0",
                                Disposition="NO ANSWER", AMAFlags="DOCUMENTATION",
                                UniqueID=agent_uid, UserField=""), *hangups]
    bridge = {"BridgeUniqueid": f"cb-{agent_uid}", "BridgeType": "basic",
              "BridgeTechnology": "simple_bridge", "BridgeCreator": "<unknown>",
              "BridgeName": "<unknown>", "BridgeNumChannels": "1", "BridgeVideoSourceMode": "none"}
    customer_up = {**customer_ring, "ChannelState": "6", "ChannelStateDesc": "Up"}
    return frames + [
        _frame("DialEnd", **{**dial, "DestChannelState": "6", "DestChannelStateDesc": "Up"},
               DialStatus="ANSWER"),
        _frame("BridgeEnter", **bridge, **customer_up),
        _frame("BridgeEnter", **{**bridge, "BridgeNumChannels": "2"}, **agent_up),
        _frame("Cdr", "cdr,all", **cdr, Duration=str(talk_seconds + 5),
               BillableSeconds=str(talk_seconds), Disposition="ANSWERED",
               AMAFlags="DOCUMENTATION", UniqueID=agent_uid, UserField=""),
        *hangups]
