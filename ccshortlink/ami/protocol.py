"""AMI framing on top of panoramisk's protocol: bytes in, event dicts out, in order."""

from __future__ import annotations

import asyncio
import codecs
import inspect
import re
from collections.abc import Callable
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from ccshortlink.core.privacy import clip
from ccshortlink.ops.logs import Logger

EventHandler = Callable[[dict[str, str]], Any]

_TERMINATOR = re.compile(r"\r?\n\r?\n")  # Asterisk sends CRLF CRLF; tolerate bare LF
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII without space or colon
_BANNER_PREFIX = "Asterisk Call Manager"
_MAX_FRAME = 1 << 20
_MAX_HEADER_NAMES = 1024  # a PBX uses a few hundred; a garbling one must not grow the set


class AmiEvent(dict[str, str]):
    """An event's headers, plus the number of the AMI session it came in (not a header).

    Equal to the plain dict of its headers; the session number lets the call tracker notice a
    reconnect, after which the PBX may be a new Asterisk (see pbxinstance).
    """

    session: int = 0


class AmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk ships no type hints
    """One AMI session's bytes -> frames -> event dicts, with a UTF-8 decoder that spans reads.

    Each event is a plain dict with header names exactly as Asterisk sends them (so `Uniqueid`
    on channel events but `UniqueID` on Cdr). A header repeated inside one frame (ChanVariable,
    for instance) keeps all its values, joined with "\\n", in their order.
    """

    def __init__(self, on_event: EventHandler, log: Logger, session: int = 0) -> None:
        super().__init__()
        self._on_event = on_event
        self._log = log
        self.session = session
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""  # an incomplete frame; never holds a terminator
        # True when _buffer has no bare LF and no CR without an LF after it (bar its last)
        self._buffer_plain = True
        self._header_names: set[str] = set()  # names already found to match _HEADER_NAME
        self.banner: str | None = None
        self.reason: str | None = None  # why the session ended, first cause wins
        loop = asyncio.get_running_loop()
        self.banner_received: asyncio.Future[str] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"

    def data_received(self, data: bytes) -> None:
        # panoramisk decodes each read on its own with errors='ignore', losing any character
        # split across two reads; one incremental decoder for the whole session cannot.
        # Bytes that are not UTF-8 inside a value (a caller name from an old phone) become
        # U+FFFD and the event is still delivered: dropping a Hangup would lose the call.
        text = self._decoder.decode(data)
        if self.banner is None:
            self._buffer += text
            if not self._take_banner():
                return
            text, self._buffer = self._buffer, ""
        if self.closed:
            return
        frames, plain = self._split(text)
        for frame in frames:
            headers = self._parse_plain(frame) if plain else None
            if headers is None:
                headers = self._parse(frame)
                if headers is None:
                    continue
            if "Event" in headers:
                self._deliver(headers)
            elif "Response" in headers and not any(n.lower() == "event" for n in headers):
                # completes the future of the action with this ActionID; others are ignored.
                # (panoramisk reads headers case-blind: an `event` header would send the frame
                # to its dispatcher, which this protocol does not have.)
                self.handle_message(Message(headers))
            else:
                self._malformed("neither Event nor Response", frame)
            if self.closed:
                return  # a handler ended the session: what follows is for no one
        if len(self._buffer) > _MAX_FRAME:
            self._malformed("frame too large", self._buffer)
            self._buffer, self._buffer_plain = "", True

    def _split(self, text: str) -> tuple[list[str], bool]:
        """Append `text`: the frames it completes, and whether they are plain CRLF.

        Plain (no bare LF, no lone CR) is what Asterisk sends: the terminator is then always
        CRLF CRLF and one str.split per read frames it all, with no slicing per frame. Only
        `text` and the few held characters before it are searched: a frame trickling in over
        many reads is not searched again at each read.
        """
        held = len(self._buffer)
        buffer = self._buffer + text
        edge = max(0, held - 1)  # a held CR may pair with an LF that just arrived
        pairs = buffer.count("\r\n", edge)
        plain = (self._buffer_plain and buffer.count("\n", held) == pairs
                 and buffer.count("\r", edge, len(buffer) - 1) == pairs)
        since = max(0, held - 3)  # a new terminator ends in `text`
        if plain:
            cut = buffer.find("\r\n\r\n", since)
            if cut < 0:
                self._buffer = buffer
                return [], True
            complete = buffer[cut + 4:].split("\r\n\r\n")
            self._buffer = complete.pop()
            complete.insert(0, buffer[:cut])
            return complete, True
        frames: list[str] = []
        start = 0
        for match in _TERMINATOR.finditer(buffer, since):
            frames.append(buffer[start:match.start()])
            start = match.end()
        if frames:  # what is left is new text only: check it afresh
            rest = self._buffer = buffer[start:]
            pairs = rest.count("\r\n")
            self._buffer_plain = rest.count("\n") == pairs == rest.count("\r", 0, len(rest) - 1)
        else:
            self._buffer, self._buffer_plain = buffer, False
        return frames, False

    def _take_banner(self) -> bool:
        line, sep, rest = self._buffer.partition("\n")
        if not sep:
            if len(self._buffer) > _MAX_FRAME:
                self.abort(f"not an AMI server: {clip(self._buffer, 40)!r}")
            return False
        self.banner, self._buffer = line.rstrip("\r"), rest
        if not self.banner.startswith(_BANNER_PREFIX):
            self.abort(f"not an AMI server: {clip(self.banner, 40)!r}")
            return False
        self.banner_received.set_result(self.banner)
        return True

    def _parse_plain(self, frame: str) -> AmiEvent | None:
        """The usual frame at C speed; None when it needs _parse's closer look.

        Usual: every line "Name: value", no name twice, each name already checked.
        """
        lines = frame.split("\r\n")
        try:
            headers = AmiEvent([line.split(": ", 1) for line in lines])
        except ValueError:  # a line without ": " (or a blank frame)
            return None
        if len(headers) != len(lines) or not headers.keys() <= self._header_names:
            return None
        return headers

    def _parse(self, frame: str) -> AmiEvent | None:
        """Any frame, line by line; None for a blank one or (with a warning) a malformed one."""
        lines = [line.rstrip("\r") for line in frame.strip("\r\n").split("\n")]
        if lines == [""]:
            return None  # a stray blank line between frames
        headers = AmiEvent()
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                self._malformed("header without colon", frame)
                return None
            if name not in self._header_names and not _HEADER_NAME.fullmatch(name):
                self._malformed("bad header name", frame)
                return None
            value = value[1:] if value.startswith(" ") else value
            headers[name] = f"{headers[name]}\n{value}" if name in headers else value
        if len(self._header_names) < _MAX_HEADER_NAMES:
            self._header_names.update(headers)
        return headers

    def _deliver(self, event: AmiEvent) -> None:
        # Called right here, on the loop, in stream order: never through panoramisk's dispatch.
        event.session = self.session
        try:
            result = self._on_event(event)
        except Exception:
            self._log.exception("ami_handler_failed", event_name=event["Event"])
            return
        if result is not None and inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            self._log.error("ami_handler_failed", event_name=event["Event"],
                            reason="on_event returned an awaitable; it must be synchronous")

    def _malformed(self, reason: str, frame: str) -> None:
        self._log.warning("ami_frame_malformed", reason=reason, head=clip(frame, 60))

    def abort(self, reason: str) -> None:
        """End the session now, discarding unsent bytes (a half-open peer will not read them)."""
        self.reason = self.reason or reason
        self.closed = True
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reason = self.reason or (f"connection lost: {exc}" if exc else "closed by the PBX")
        if not self.finished.done():
            self.finished.set_result(None)
