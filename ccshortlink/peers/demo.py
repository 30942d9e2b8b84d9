"""`ccshortlink demo`: the real daemon against a replayed real call and a printing SMS sink."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from importlib import resources
from pathlib import Path

from ccshortlink.config.settings import parse_config
from ccshortlink.core.privacy import mask_number
from ccshortlink.daemon import Daemon
from ccshortlink.ops.logs import configure_logging, get_logger
from ccshortlink.peers.amipeer import AmiPeer, split_transcript
from ccshortlink.peers.smssink import SinkSms, SmsSink

DEMO_USER = "ccshortlink"
DEMO_SECRET = "demo-secret"


def _free_port(preferred: int) -> int:
    """The preferred port if nothing listens there, else any free one."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


def _install_demo_files(state: Path) -> Path:
    """Copy the packaged demo agents and avatars where the demo config points."""
    data = resources.files("ccshortlink.peers") / "data"
    (state / "avatars").mkdir(parents=True, exist_ok=True)
    for entry in (data / "avatars").iterdir():
        (state / "avatars" / entry.name).write_bytes(entry.read_bytes())
    agents = state / "agents.yaml"
    agents.write_bytes((data / "demo-agents.yaml").read_bytes())
    return agents


# Shown of an Originate, in this order; the customer's number (Exten) only masked.
_ORIGINATE_FIELDS = ("Channel", "Context", "Exten", "Priority", "CallerID", "Timeout", "Async",
                     "ActionID", "Variable")


def _print_originate(action: dict[str, str]) -> None:
    """What the daemon asked the PBX when the customer tapped "call me back" on the card."""
    if action.get("Action", "").lower() != "originate":
        return
    shown = {name: action[name] for name in _ORIGINATE_FIELDS if name in action}
    if "Exten" in shown:
        shown["Exten"] = mask_number(shown["Exten"])
    print("\n┌─ Originate received by the demo PBX (\"call me back\" was tapped on the card)")
    for name, value in shown.items():
        print(f"│ {name}: {value}")
    print("└─ the demo PBX plays the call: the agent answers, then the customer; they talk",
          flush=True)


def _print_sms(sms: SinkSms, done: asyncio.Event) -> None:
    coding = {0: "GSM-7", 8: "UCS-2"}.get(sms.data_coding, f"data_coding {sms.data_coding}")
    print("\n┌─ SMS received by the demo SMSC (a sink: nothing leaves this machine)")
    print(f"│ to {mask_number(sms.destination)} from {sms.source}, {coding}, "
          f"{sms.parts} part(s)")
    print(f"│ {sms.text}")
    print("└─", flush=True)
    done.set()


async def run_demo(*, port: int = 8080, exit_after: float | None = None) -> int:
    configure_logging("info")
    log = get_logger()
    state = Path(tempfile.mkdtemp(prefix="ccshortlink-demo-"))
    try:
        agents_file = _install_demo_files(state)
        got_sms = asyncio.Event()
        sink = SmsSink(lambda sms: _print_sms(sms, got_sms))
        smsc_port = await sink.start()
        raw = (resources.files("ccshortlink.peers") / "data" / "demo-call.ami").read_bytes()
        banner, frames = split_transcript(raw)
        # A real call recorded on Asterisk 20: +8613800138000 rings agent 1001, who answers.
        peer = AmiPeer(frames, username=DEMO_USER, secret=DEMO_SECRET, banner=banner,
                       frame_delay=0.05, on_action=_print_originate)
        # A call-back slow enough to watch on the card (it refreshes itself every 5 s).
        peer.call_frame_delay = 0.05
        peer.talk_seconds = 5.0
        ami_port = await peer.start()
        web_port = _free_port(port)
        config = parse_config({
            "ami": {"host": "127.0.0.1", "port": ami_port, "username": DEMO_USER,
                    "secret": DEMO_SECRET, "ping_interval": 5.0},
            "smpp": {"host": "127.0.0.1", "port": smsc_port, "system_id": "demo",
                     "password": "demo", "source_addr": "95566", "enquire_link_interval": 5.0},
            "web": {"listen": f"127.0.0.1:{web_port}",
                    "public_url": f"http://127.0.0.1:{web_port}",
                    "hotline": "+86 400 800 8888", "company": "ccshortlink demo"},
            "database": {"path": str(state / "demo.db")},
            "agents": {"file": str(agents_file)},
            "policy": {"min_talk_seconds": 1, "default_region": "CN"},
            "callback": {"enabled": True},
        }, state / "ccshortlink.toml")
        daemon = Daemon(config, log)
        print(f"ccshortlink demo: replaying a recorded Asterisk call over AMI on 127.0.0.1:"
              f"{ami_port}; the SMS sink listens on 127.0.0.1:{smsc_port}.", flush=True)
        run = asyncio.create_task(daemon.run())
        waiter = asyncio.create_task(got_sms.wait())
        await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if got_sms.is_set():
            link = sink.received[-1].text.split("http", 1)[-1].split()[0]
            print(f"\nOpen the agent's card:  http{link}", flush=True)
            print('Tap "call me back" (请客服回电给我) there: the demo PBX prints the Originate '
                  "it receives and plays the call.", flush=True)
            print("Press Ctrl-C to stop." if exit_after is None
                  else f"Stopping in {exit_after:g} s.", flush=True)
        if exit_after is not None and not run.done():
            try:
                await asyncio.wait_for(asyncio.shield(run), timeout=exit_after)
            except TimeoutError:
                daemon.stop.set()
        code = await run
        await peer.stop()
        await sink.stop()
        return code if got_sms.is_set() else 1
    finally:
        shutil.rmtree(state, ignore_errors=True)
