"""Read the agents YAML into Agent records, with file:line for every problem."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ccshortlink.config.agentsyaml import Map, Seq, YamlSyntaxError, read_yaml
from ccshortlink.config.agentvalues import (
    check_unknown,
    count_of,
    extensions_of,
    file_of,
    flag_of,
    hours_of,
    is_channel,
    items_of,
    kind,
    score_of,
    text_of,
)
from ccshortlink.config.problems import ProblemsError
from ccshortlink.core.agents import Agent, AgentDirectory, Review, ServiceRecord


class AgentsError(ProblemsError):
    """The agents file is unusable; `problems` lists every reason with file:line."""


_AGENT_FIELDS = (
    "id", "extensions", "name", "phone", "slogan", "avatar", "title", "language", "greeting",
    "satisfaction", "satisfaction_votes", "calls_handled", "customers_served",
    "service_records", "reviews", "auto_send", "hours",
)
_TOP_LEVEL = ("agents", "channel_map")
_RECORD_FIELDS = ("title", "detail", "date")
_REVIEW_FIELDS = ("stars", "text", "author", "date")


def _records(entry: Map, where: str, file: str, problems: list[str]) -> tuple[ServiceRecord, ...]:
    records = []
    for item, line in items_of(entry, "service_records", where, problems):
        at = f"{file}:{line}"
        if isinstance(item, str) and item.strip():
            records.append(ServiceRecord(title=item.strip()))
        elif isinstance(item, Map) and isinstance(item.get("title"), str) and item["title"].strip():
            check_unknown(item, _RECORD_FIELDS, "service record field", at, problems)
            records.append(ServiceRecord(title=text_of(item, "title", at, problems),
                                         detail=text_of(item, "detail", at, problems),
                                         date=text_of(item, "date", at, problems)))
        else:
            problems.append(f"{at}: each service record needs a 'title'")
    return tuple(records)


def _reviews(entry: Map, where: str, file: str, problems: list[str]) -> tuple[Review, ...]:
    reviews = []
    for item, line in items_of(entry, "reviews", where, problems):
        at = f"{file}:{line}"
        stars = item.get("stars") if isinstance(item, Map) else None
        if not isinstance(item, Map) or not isinstance(stars, str) \
                or stars.strip() not in ("1", "2", "3", "4", "5"):
            problems.append(f"{at}: review 'stars' must be 1..5")
            continue
        check_unknown(item, _REVIEW_FIELDS, "review field", at, problems)
        reviews.append(Review(stars=int(stars), text=text_of(item, "text", at, problems),
                              author=text_of(item, "author", at, problems),
                              date=text_of(item, "date", at, problems)))
    return tuple(reviews)


def _agent(entry: Map, base: Path, where: str, file: str, problems: list[str]) -> Agent:
    check_unknown(entry, _AGENT_FIELDS, "field", where, problems)
    return Agent(
        id=text_of(entry, "id", where, problems, required=True),
        extensions=extensions_of(entry, where, file, problems),
        name=text_of(entry, "name", where, problems, required=True),
        phone=text_of(entry, "phone", where, problems, required=True),
        slogan=text_of(entry, "slogan", where, problems),
        avatar=file_of(base, text_of(entry, "avatar", where, problems), where, "avatar", problems),
        title=text_of(entry, "title", where, problems),
        language=text_of(entry, "language", where, problems),
        greeting=file_of(base, text_of(entry, "greeting", where, problems), where, "greeting",
                         problems),
        satisfaction=score_of(entry, where, problems),
        satisfaction_votes=count_of(entry, "satisfaction_votes", where, problems),
        calls_handled=count_of(entry, "calls_handled", where, problems),
        customers_served=count_of(entry, "customers_served", where, problems),
        service_records=_records(entry, where, file, problems),
        reviews=_reviews(entry, where, file, problems),
        auto_send=flag_of(entry, "auto_send", where, problems, default=True),
        hours=hours_of(entry, where, problems),
    )


def _channel_map(document: Map, owners: dict[str, str], file: str,
                 problems: list[str]) -> dict[str, str]:
    raw = document.get("channel_map")
    if raw is None:
        return {}
    if not isinstance(raw, Map):
        problems.append(f"{file}:{document.lines['channel_map']}: 'channel_map' must map "
                        "channel names to extensions")
        return {}
    mapped = {}
    for channel, extension in raw.items():
        at = f"{file}:{raw.lines[channel]}"
        if not is_channel(channel.strip()):
            problems.append(f"{at}: channel_map key '{channel}' must be a channel name such as "
                            "'PJSIP/desk-ann'")
        elif not isinstance(extension, str) or extension.strip() not in owners:
            shown = f"'{extension}'" if isinstance(extension, str) else kind(extension)
            problems.append(f"{at}: channel_map '{channel}' maps to {shown}, which is no "
                            "agent's extension")
        else:
            mapped[channel.strip()] = extension.strip()
    return mapped


class _AgentsRead:
    """Each agent checked as soon as the YAML reader hands it over; only the Agent is kept."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.file = str(source)
        self.problems: list[str] = []
        self.agents: list[Agent] = []
        self.seen_ids: dict[str, str] = {}
        self.owners: dict[str, str] = {}  # extension -> agent id

    def take(self, key: str, entry: object, line: int) -> bool:
        if key != "agents":
            return False
        where = f"{self.file}:{line}"
        if not isinstance(entry, Map):
            self.problems.append(f"{where}: each item of 'agents' must be a mapping")
            return True
        agent = _agent(entry, self.source.parent, where, self.file, self.problems)
        self._claim(agent, where)
        self.agents.append(agent)
        return True

    def _claim(self, agent: Agent, where: str) -> None:
        """An id and each extension belong to one agent: the first one read."""
        if agent.id and agent.id in self.seen_ids:
            self.problems.append(
                f"{where}: duplicate id '{agent.id}' (first at {self.seen_ids[agent.id]})")
        self.seen_ids.setdefault(agent.id, where)
        for ext in agent.extensions:
            if self.owners.setdefault(ext, agent.id) != agent.id:
                self.problems.append(
                    f"{where}: extension '{ext}' already belongs to '{self.owners[ext]}'")


def parse_agents(text: str, source: Path) -> AgentDirectory:
    """Parse agents YAML text; `source` names the file and anchors relative paths."""
    read = _AgentsRead(source)
    file = read.file
    try:
        document, syntax = read_yaml(text, file, read.take)
    except YamlSyntaxError as exc:
        raise AgentsError(file, [exc.problem]) from None
    if not isinstance(document, Map) or not isinstance(document.get("agents"), Seq):
        raise AgentsError(file, [*syntax, f"{file}:1: expected a top-level 'agents:' list"])
    check_unknown(document, _TOP_LEVEL, "top-level key", file, syntax, file=file)
    channel_map = _channel_map(document, read.owners, file, read.problems)
    if syntax or read.problems:
        raise AgentsError(file, syntax + read.problems)
    return AgentDirectory(read.agents, channel_map)


def load_agents(path: Path, pbxs: Collection[str] | None = None) -> AgentDirectory:
    """Read and validate the agents file at `path`; safe to run in a worker thread.

    With `pbxs` (the [[ami]] names), an extension qualified by any other name is a problem:
    it could never match a call.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AgentsError(str(path), [f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentsError(str(path), [f"{path}: cannot read: {exc}"]) from None
    agents = parse_agents(text, path)
    unknown = sorted(agents.pbx_names - set(pbxs)) if pbxs is not None else []
    if unknown:
        known = ", ".join(sorted(pbxs or ())) or "none"
        raise AgentsError(str(path), [
            f"{path}: extensions name PBX '{name}', which no [[ami]] table names "
            f"(known: {known})" for name in unknown])
    return agents
