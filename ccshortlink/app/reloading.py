"""What changes while running: the agents and SMS templates, reloaded on SIGHUP or kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ccshortlink.app.ports import Log
from ccshortlink.config.problems import ProblemsError
from ccshortlink.config.settings import load_config
from ccshortlink.config.sms import card_templates
from ccshortlink.config.smstexts import reply_texts
from ccshortlink.core.agents import AgentDirectory
from ccshortlink.core.calls import AgentLookup, CallTracker, default_agent_lookup
from ccshortlink.core.links import SmsTemplates
from ccshortlink.core.policy import PolicyConfig
from ccshortlink.core.replytexts import ReplyTexts


@dataclass
class Live:
    """What changes at run time: reloaded on SIGHUP, read through callables."""

    agents: AgentDirectory
    templates: SmsTemplates
    ami_up: bool = False  # any PBX's AMI session is logged in
    pbx_up: dict[str, bool] = field(default_factory=dict)  # each PBX's, by name
    db_ok: bool = True
    replies: ReplyTexts | None = None  # the answers to opt-out, opt-in and help replies


def agent_lookup(agents: AgentDirectory, pbx: str = "") -> AgentLookup:
    """Which channels are agents' on `pbx` (its own qualified extensions, and the others)."""
    return default_agent_lookup(lambda ext: agents.by_extension(ext, pbx) is not None,
                                agents.channel_map_for(pbx))


def call_tracker(policy: PolicyConfig, agents: AgentDirectory, pbx: str = "") -> CallTracker:
    return CallTracker(
        agent_lookup(agents, pbx),
        card_on_transfer=policy.card_on_transfer,
        feature_code_window=policy.feature_code_window_minutes * 60,
        call_timeout=policy.call_timeout_hours * 3600,
        max_channels=policy.max_live_channels)


class Reloader:
    """Swaps in new agents and templates, or keeps the old ones and says exactly why.

    Reading and checking the files runs in a worker thread (20,000 agents take seconds,
    longer than AMI waits for a ping answer); only the swap happens on the loop.
    Other settings (addresses, credentials, policy) need a restart: they are read once.
    """

    def __init__(self, config_path: Path, live: Live,
                 tracker: CallTracker | Mapping[str, CallTracker], log: Log, *,
                 load_agents: Callable[[Path], AgentDirectory]) -> None:
        self.config_path = config_path
        self.load_agents = load_agents  # config.agents' reader, handed in (it parses YAML)
        self.live = live
        # Each PBX's tracker, by name: each learns the agents as seen on its own PBX.
        self.trackers: Mapping[str, CallTracker] = (
            {"": tracker} if isinstance(tracker, CallTracker) else tracker)
        self.log = log
        self._task: asyncio.Task[None] | None = None
        self._wanted = False

    def on_sighup(self) -> None:
        # Parsing runs in a thread; a SIGHUP during a reload is answered by one more reload.
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._reload_while_wanted())

    def abandon(self) -> None:
        """At the stop: a reload still parsing is simply abandoned."""
        if self._task is not None:
            self._task.cancel()

    async def _reload_while_wanted(self) -> None:
        while self._wanted:
            self._wanted = False
            await self.reload()

    async def reload(self) -> bool:
        try:
            agents, (templates, replies), languages, lookups = await asyncio.to_thread(
                self._read)
        except ProblemsError as exc:  # the config or agents file: every problem
            self.log.error("reload_failed", problems=exc.problems,
                           reason="kept the previous agents and templates")
            return False
        except Exception as exc:  # an unreadable file must never take the daemon down
            self.log.error("reload_failed", problems=[repr(exc)],
                           reason="kept the previous agents and templates")
            return False
        self.live.agents = agents
        self.live.templates = templates
        self.live.replies = replies
        for pbx, tracker in self.trackers.items():
            tracker.agent_lookup = lookups[pbx]
        self.log.info("reload_done", agents=len(agents), templates=languages)
        return True

    def _read(self) -> tuple[AgentDirectory, tuple[SmsTemplates, ReplyTexts], list[str],
                             dict[str, AgentLookup]]:
        """Runs in a worker thread: everything a reload needs, built and checked."""
        # Templates rendered in the bounded sandbox with the configured public_url, as at start.
        config = load_config(self.config_path, render_templates=True)
        agents = self.load_agents(config.agents_file)
        texts = (card_templates(config.sms), reply_texts(
            config.sms.carrier, config.sms.default_language, company=config.web.company,
            hotline=config.web.hotline))
        lookups = {pbx: agent_lookup(agents, pbx) for pbx in self.trackers}
        return agents, texts, sorted(config.sms.templates), lookups
