"""AMI adapter: connect, log in, keep alive, reconnect; framing lives in amiprotocol."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from panoramisk.actions import Action

from ccshortlink.ami.protocol import AmiEvent, AmiProtocol, EventHandler
from ccshortlink.app.ports import OriginateUnconfirmed, PbxUnavailable
from ccshortlink.config.settings import AmiConfig
from ccshortlink.config.tls import TlsConfig
from ccshortlink.core.describe import describe
from ccshortlink.ops.logs import Logger
from ccshortlink.ops.tls import client_context, describe_tls_failure

# What is used from panoramisk, and why not its Manager: the protocol's action bookkeeping
# (Action serialisation, ActionIDs, one future per action, response matching) is kept.
# Manager is not: every job it does is one we must do differently. It reconnects on its own
# every 2 s forever, never reports a rejected login (the future just holds success=False),
# pings with no deadline (a half-open connection is never noticed, and it truncates the
# interval to whole seconds), and runs callbacks fire-and-forget. What would be left of it
# after overriding connect, connection_made, connection_lost, ping, login and dispatch is
# nothing, so this module drives the connection itself.

_FIRST_RETRY = 0.5
_HANDSHAKE_TIMEOUT = 5.0
_STOP_GRACE = 2.0
_ACTION_TIMEOUT = 10.0  # s for the PBX to answer an action (Originate answers at once)


__all__ = ["AmiAuthError", "AmiClient", "AmiEvent", "AmiProtocol", "pbx_clients"]


class AmiAuthError(Exception):
    """The PBX rejected the username/secret; retrying cannot help (the daemon exits 78)."""


class AmiClient:
    """Keeps one logged-in AMI session open and feeds its events to `on_event`."""

    def __init__(self, config: AmiConfig, on_event: EventHandler, log: Logger, *,
                 on_state: Callable[[bool], None] | None = None,
                 rng: random.Random | None = None) -> None:
        self._config = config
        self._on_event = on_event
        self._log = log
        self._on_state = on_state
        self._rng = rng or random.Random()
        self._protocol: AmiProtocol | None = None
        self._connected = False
        self._sessions = 0  # numbers each connection's events (AmiEvent.session)

    @property
    def connected(self) -> bool:
        """Logged in and answering pings."""
        return self._connected

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until `stop` is set; raise AmiAuthError if the login is refused.

        Events keep arriving until run() has returned (at most 2 s after `stop`).
        """
        supervisor = asyncio.create_task(self._supervise())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({supervisor, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if supervisor.done():
                supervisor.result()  # AmiAuthError, or a bug: either way the caller must see it
        finally:
            for task in (supervisor, stopped):
                task.cancel()
            await asyncio.gather(supervisor, stopped, return_exceptions=True)
            await self._close()

    async def originate(self, fields: Mapping[str, str]) -> str | None:
        """Send an Originate and await its Response: None when the PBX queued it, else its
        Message ("Permission denied" for a user without write = originate). Raises
        PbxUnavailable when the session is down (nothing sent), OriginateUnconfirmed when it
        was written but no Response came in time or the link dropped first. With Async
        the call's fate comes later as an OriginateResponse event, through `on_event`."""
        protocol = self._protocol
        if protocol is None or not self._connected or protocol.closed:
            raise PbxUnavailable(f"AMI {self._config.host}:{self._config.port} is not connected")
        # as_list False: the first Response completes it (panoramisk would otherwise await
        # the OriginateResponse, which this protocol hands to on_event as any other event).
        reply: asyncio.Future[Any] = protocol.send(Action(dict(fields), as_list=False))
        await asyncio.wait({reply, protocol.finished}, timeout=_ACTION_TIMEOUT,
                           return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            reply.cancel()
            raise OriginateUnconfirmed("the PBX gave no answer to Originate"
                                       if not protocol.finished.done() else "AMI connection lost")
        response = reply.result()
        if response.success:
            return None
        return str(response.get("Message", "") or "refused")

    async def _supervise(self) -> None:
        failures = 0
        down_logged = False
        while True:
            try:
                reason = await self._open_session()
            except AmiAuthError:
                raise
            except (OSError, TimeoutError) as exc:
                reason = _describe(exc)
            if reason is None:  # logged in: serve until the session ends
                down_logged = False
                started = asyncio.get_running_loop().time()
                reason = await self._serve()
                if asyncio.get_running_loop().time() - started >= self._config.ping_interval:
                    failures = 0  # it was healthy; a PBX that drops every login keeps backing off
            if not down_logged:  # once per outage, not once per attempt
                self._log.warning("ami_disconnected", host=self._config.host,
                                  port=self._config.port, reason=reason)
                down_logged = True
            delay = min(self._config.reconnect_max, _FIRST_RETRY * 2 ** failures)
            delay *= self._rng.uniform(0.5, 1.0)  # jitter: daemons restarted together spread out
            failures += 1
            self._log.debug("ami_retry_scheduled", delay=round(delay, 3), attempt=failures,
                            reason=reason)
            await asyncio.sleep(delay)

    def _make_protocol(self) -> AmiProtocol:
        self._sessions += 1
        self._protocol = AmiProtocol(self._on_event, self._log, session=self._sessions)
        return self._protocol

    async def _open_session(self) -> str | None:
        """Connect and log in; None when logged in, else why not."""
        self._protocol = None
        try:
            return await self._handshake()
        except (OSError, TimeoutError):
            protocol = self._protocol
            if protocol is not None and getattr(protocol, "transport", None) is not None \
                    and not protocol.closed:
                protocol.abort("handshake failed")  # e.g. a port that never says a word
            raise

    async def _handshake(self) -> str | None:
        loop = asyncio.get_running_loop()
        timeout = max(_HANDSHAKE_TIMEOUT, self._config.ping_timeout)
        tls = self._config.tls
        async with asyncio.timeout(timeout):
            # Over TLS the Login below is written only once the handshake has checked the
            # certificate: a refused one fails here, before a byte of the secret is sent.
            _, protocol = await loop.create_connection(
                self._make_protocol, self._config.host, self._config.port,
                ssl=client_context(tls) if tls else None,
                server_hostname=tls.server_name if tls else None)
            greeting: set[asyncio.Future[Any]] = {protocol.banner_received, protocol.finished}
            await asyncio.wait(greeting, return_when=asyncio.FIRST_COMPLETED)
            if not protocol.banner_received.done():
                return protocol.reason or "closed before the banner"
            login: asyncio.Future[Any] = protocol.send(Action({
                "Action": "Login", "Username": self._config.username,
                "Secret": self._config.secret, "Events": self._config.events}))
            ending: set[asyncio.Future[Any]] = {login, protocol.finished}
            await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
        if not login.done():
            return f"closed during login ({protocol.reason})"
        response = login.result()
        if not response.success:
            message = response.get("Message", "") or "login rejected"
            self._log.error("ami_login_failed", host=self._config.host, port=self._config.port,
                            username=self._config.username, message=message)
            protocol.abort("login rejected")
            raise AmiAuthError(f"AMI login as {self._config.username!r} rejected: {message}")
        self._set_connected(True)
        self._log.info("ami_connected", host=self._config.host, port=self._config.port,
                       banner=protocol.banner, events=self._config.events,
                       **_tls_fields(protocol, tls))
        return None

    async def _serve(self) -> str:
        """Ping the logged-in session until it ends; why it ended."""
        protocol = self._protocol
        assert protocol is not None
        while True:
            await asyncio.wait({protocol.finished}, timeout=self._config.ping_interval)
            if protocol.finished.done():
                break
            pong = protocol.send(Action({"Action": "Ping"}))
            await asyncio.wait({pong, protocol.finished}, timeout=self._config.ping_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if protocol.finished.done():
                break
            if not pong.done():  # TCP says connected, but nobody is answering
                self._log.warning("ami_ping_timeout", host=self._config.host,
                                  port=self._config.port, timeout=self._config.ping_timeout)
                protocol.abort(f"no Ping response within {self._config.ping_timeout:g} s")
                break
        # Not in a `finally`: when run() is stopping, _close() still needs to know to log off.
        self._set_connected(False)
        return protocol.reason or "connection closed"

    async def _close(self) -> None:
        """Log off politely if logged in, then make sure the socket is gone within 2 s."""
        protocol, self._protocol = self._protocol, None
        if protocol is None or getattr(protocol, "transport", None) is None or protocol.closed:
            self._set_connected(False)
            return
        try:
            async with asyncio.timeout(_STOP_GRACE):
                if self._connected:
                    goodbye = protocol.send(Action({"Action": "Logoff"}))
                    await asyncio.wait({goodbye, protocol.finished}, timeout=_STOP_GRACE / 2,
                                       return_when=asyncio.FIRST_COMPLETED)
                protocol.transport.close()
                await protocol.finished
        except TimeoutError:
            protocol.abort("stopping")
        finally:
            self._set_connected(False)
        self._log.info("ami_closed", host=self._config.host, port=self._config.port)

    def _set_connected(self, connected: bool) -> None:
        if connected == self._connected:
            return
        self._connected = connected
        if self._on_state is not None:
            try:
                self._on_state(connected)
            except Exception:
                self._log.exception("ami_state_handler_failed", connected=connected)


def pbx_clients(pbxs: Sequence[AmiConfig], on_event: Callable[[str, dict[str, str]], None],
                log: Logger, *, on_state: Callable[[str, bool], None]) -> tuple[AmiClient, ...]:
    """One client per PBX, each handing on its events and state with the PBX's name; with
    several PBXs each one's log lines say which it is about."""
    several = len(pbxs) > 1
    return tuple(AmiClient(pbx, partial(on_event, pbx.name),
                           log.bind(pbx=pbx.name) if several else log,
                           on_state=partial(on_state, pbx.name)) for pbx in pbxs)


def _tls_fields(protocol: AmiProtocol, tls: TlsConfig | None) -> dict[str, object]:
    """For the connected line: the TLS version in use and whether the peer was checked."""
    if tls is None:
        return {}
    transport = getattr(protocol, "transport", None)
    version = transport.get_extra_info("ssl_object").version() if transport else None
    return {"tls": version or "on", "tls_verified": tls.verify}


def _describe(exc: BaseException) -> str:
    tls_failure = describe_tls_failure(exc)
    if tls_failure is not None:
        return tls_failure
    if isinstance(exc, TimeoutError):
        return "no answer to connect/login in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return describe(exc)
