"""Live links by code for a few seconds, with the card pages rendered from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ccshortlink.app.cardcache import AgentFigures
from ccshortlink.app.ports import LinkPages
from ccshortlink.app.singleflight import SingleFlight
from ccshortlink.core.agents import Agent, AgentDirectory
from ccshortlink.core.links import link_status
from ccshortlink.core.records import LinkView
from ccshortlink.core.vocab import LinkStatus


@dataclass
class CachedLink:
    """One link as last read, its agent in the directory it was looked up in, and the
    card bodies rendered for it per language with the figures each was drawn from."""

    link: LinkView
    fetched_at: float
    directory: AgentDirectory
    agent: Agent | None
    pages: dict[str, tuple[AgentFigures, bytes]] = field(default_factory=dict)

    def page(self, lang: str, figures: AgentFigures | None) -> bytes | None:
        """The rendered card in `lang`, if it was drawn from exactly these figures."""
        found = self.pages.get(lang)
        return found[1] if found is not None and found[0] is figures else None


class LinkCache:
    """Links looked up by the card routes, kept `ttl` seconds, at most `max_links` of them.

    A popular card is opened many times a second; each open used to cost a trip to the
    SQLite thread and a template render. Here a hot link is a dict lookup. What keeps it
    right:
    * expiry is exact: an entry is used only while `expires_at` is still ahead, and a link
      that looks expired is read again (a reused link may have been extended meanwhile);
    * a rating on the link `forget`s it, also when a read was already under way;
    * one read per code is in flight at a time: the many opens that find an entry just
      expired wait for the same read instead of queueing at the SQLite thread;
    * an agents reload (a new directory object) re-resolves the agent and drops pages;
    * revocations and links changed by another process show within `ttl` seconds.
    Only live links are kept; unknown, expired and revoked codes always go to the store.
    Memory: `max_links` entries with up to one page per language (≤ 14 KB each), so the
    default 1000 holds at most ~28 MB, typically a few MB.
    """

    def __init__(self, store: LinkPages, agents: Callable[[], AgentDirectory],
                 clock: Callable[[], float], *, ttl: float = 5.0,
                 max_links: int = 1000) -> None:
        self._store = store
        self._agents = agents
        self._clock = clock
        self.ttl = ttl
        self.max_links = max_links
        # Oldest read first: an entry is read again every `ttl` seconds while it is in use,
        # so evicting the oldest read is least-recently-used at that resolution.
        self._entries: dict[str, CachedLink] = {}
        self._forgets = 0  # bumped by forget(): a read that overlapped one is not kept
        self._reading: SingleFlight[str, CachedLink | None] = SingleFlight()

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(self, code: str) -> CachedLink | None:
        """The link and its agent (None: no such code); `link.status` is as of now."""
        now = self._clock()
        entry = self._entries.get(code)
        if (entry is not None and entry.fetched_at > now - self.ttl
                and entry.link.expires_at > now):
            directory = self._agents()
            if entry.directory is not directory:
                entry = CachedLink(entry.link, entry.fetched_at, directory,
                                   directory.by_id(entry.link.agent_id))
                self._entries[code] = entry
            return entry
        entry = await self._reading.load(code, lambda: self._read(code, now))
        if (entry is not None and entry.link.status == LinkStatus.LIVE
                and entry.link.expires_at <= now):
            # a read started a moment earlier by another visitor: judge expiry as of now
            status = link_status(entry.link.expires_at, None, now)
            entry = CachedLink(replace(entry.link, status=status), entry.fetched_at,
                               entry.directory, entry.agent)
        return entry

    async def _read(self, code: str, now: float) -> CachedLink | None:
        forgets = self._forgets
        link = await self._store.link_for_page(code, now)
        previous = self._entries.pop(code, None)
        if link is None:
            return None
        directory = self._agents()
        entry = CachedLink(link, now, directory, directory.by_id(link.agent_id))
        if previous is not None and previous.link == link and previous.directory is directory:
            entry.pages = previous.pages  # nothing changed: keep the rendered cards
        if link.status == LinkStatus.LIVE and forgets == self._forgets:
            self._entries[code] = entry
            if len(self._entries) > self.max_links:
                del self._entries[next(iter(self._entries))]
        return entry

    def forget(self, code: str) -> None:
        """Drop the link after a change to it (a rating)."""
        self._forgets += 1
        self._entries.pop(code, None)
        self._reading.forget(code)  # later lookups must not join a read from before
