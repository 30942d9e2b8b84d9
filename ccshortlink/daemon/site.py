"""The daemon's web side: the site started on the configured address, and /healthz's states."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ccshortlink.ami.pbxs import PbxSessions
from ccshortlink.app.callbackdispatch import CallbackDispatcher
from ccshortlink.app.callbacks import CallbackDeps, Callbacks
from ccshortlink.app.pbxflows import ami_health
from ccshortlink.core.presence import PresenceBook
from ccshortlink.store.choose import AnyStore
from ccshortlink.web.app import make_app

if TYPE_CHECKING:
    from ccshortlink.daemon import Daemon, Parts


async def start_web(daemon: Daemon, store: AnyStore,
                    callbacks: Callbacks | None) -> web.AppRunner:
    """The card site and the API, listening; `callbacks` None: [callback] is off."""
    config = daemon.config
    app = make_app(store=store, agents=lambda: daemon.parts.live.agents,
                   web_config=config.web, clock=daemon.clock, health=daemon.health,
                   metrics=daemon.metrics, send_card=daemon.send_card, log=daemon.log,
                   zone=ZoneInfo(config.policy.timezone),
                   default_region=config.policy.default_region,
                   callbacks=callbacks,
                   lookup_without_token=config.callback.lookup_without_token)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, config.web.host, config.web.port).start()
    daemon.web_port = runner.addresses[0][1] if runner.addresses else config.web.port
    daemon.log.info("web_listening", host=config.web.host, port=daemon.web_port,
                    public_url=config.web.public_url)
    return runner


def health(pbxs: tuple[str, ...], parts: Parts) -> dict[str, Any]:
    """Each component's state; `db_reason` says why the database is `failing`."""
    states: dict[str, Any] = {**ami_health(pbxs, parts.live.pbx_up),
                              "smpp": "up" if parts.smpp.bound else "down",
                              "db": "up" if parts.live.db_ok else "down"}
    reason = parts.db_watch.check()  # a change seen here is logged as soon as it is seen
    if reason is not None:
        states["db"], states["db_reason"] = "failing", reason
    return states


@dataclass(frozen=True)
class CallbackParts:
    """[callback] on: what the card and the lookup ask, and the task that places call-backs."""

    desk: Callbacks
    dispatcher: CallbackDispatcher


def build_callbacks(daemon: Daemon, store: AnyStore, sessions: PbxSessions,
                    mark_callback: Callable[[str, str], None]) -> CallbackParts | None:
    """The call-back desk and its dispatcher when [callback] is on, else None."""
    config = daemon.config
    if not config.callback.enabled:
        return None
    deps = CallbackDeps(store=store, config=config.callback,
                        agents=lambda: daemon.parts.live.agents, pbxs=daemon.pbxs,
                        policy=config.policy, presence=PresenceBook(), clock=daemon.clock,
                        log=daemon.log,
                        outcomes=lambda outcome: daemon.metrics.callbacks.labels(outcome=outcome))
    dispatcher = CallbackDispatcher(
        deps, sessions, waiting=daemon.metrics.callbacks_waiting, mark_callback=mark_callback,
        owner=f"{socket.gethostname()}:{os.getpid()}:{id(daemon):x}",
        hotline=config.web.hotline)
    return CallbackParts(Callbacks(deps), dispatcher)
