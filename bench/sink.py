"""`python -m bench.sink`: the in-package SmsSink as a process, one stamped JSON line per SMS."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from ccshortlink.peers.smssink import SinkSms, SmsSink


def _print(line: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


async def serve(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def on_sms(sms: SinkSms) -> None:
        # Only what the benchmark needs: who, when, how many parts; the text stays here.
        _print({"t": round(time.time(), 6), "event": "sms", "destination": sms.destination
                if sms.destination.startswith("+") else "+" + sms.destination,
                "parts": sms.parts})

    sink = SmsSink(on_sms)
    bound = await sink.start(port=port)
    _print({"t": round(time.time(), 6), "event": "listening", "port": bound})
    await stop.wait()
    await sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
