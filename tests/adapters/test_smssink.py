"""The demo's SMSC (peers/smssink.py): a session cut off by a forced stop ends quietly."""

from __future__ import annotations

import asyncio
from typing import Any

from ccshortlink.peers.smssink import SmsSink


async def test_a_session_cancelled_by_a_forced_stop_logs_no_traceback() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    sink = SmsSink(on_sms=lambda sms: None)
    port = await sink.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.05)  # the session is waiting for a PDU
    sessions = [t for t in asyncio.all_tasks() if "SmsSink._session" in repr(t.get_coro())]
    assert len(sessions) == 1
    sessions[0].cancel()  # what the daemon's forced stop does to every task left
    await asyncio.sleep(0.05)
    writer.close()
    await sink.stop()
    loop.set_exception_handler(None)
    assert reported == []
