"""Read the agents YAML into Agent records, with file:line for every problem."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ccshortlink.problems import ProblemsError


class AgentsError(ProblemsError):
    """The agents file is unusable; `problems` lists every reason with file:line."""


@dataclass(frozen=True)
class ServiceRecord:
    """One line of an agent's service record, e.g. an award or a milestone."""

    title: str
    detail: str = ""
    date: str = ""


@dataclass(frozen=True)
class Review:
    """A review shown on the card, either static from YAML or left on the page."""

    stars: int
    text: str
    author: str = ""
    date: str = ""


@dataclass(frozen=True)
class Agent:
    """A customer-service agent: the CS ID and everything the card shows."""

    id: str
    extensions: tuple[str, ...]
    name: str
    phone: str
    slogan: str = ""
    avatar: Path | None = None
    title: str = ""
    language: str = ""
    greeting: Path | None = None
    # Static figures from other systems, merged with what the daemon measures itself.
    satisfaction: float | None = None
    satisfaction_votes: int = 0
    calls_handled: int = 0
    customers_served: int = 0
    service_records: tuple[ServiceRecord, ...] = ()
    reviews: tuple[Review, ...] = ()

    @property
    def initials(self) -> str:
        words = self.name.split()
        if len(words) > 1:
            return (words[0][0] + words[-1][0]).upper()
        # CJK names: the family name is the first character
        return self.name[:1].upper()


class AgentDirectory:
    """Look agents up by CS ID or by PBX extension."""

    def __init__(self, agents: list[Agent], channel_map: dict[str, str] | None = None) -> None:
        self.agents: tuple[Agent, ...] = tuple(agents)
        self._by_id = {a.id: a for a in agents}
        self._by_extension = {ext: a for a in agents for ext in a.extensions}
        # Unusual channel names (e.g. "SIP/trunk-agent7") mapped to an extension.
        self.channel_map: dict[str, str] = dict(channel_map or {})

    def __len__(self) -> int:
        return len(self.agents)

    def by_id(self, agent_id: str) -> Agent | None:
        return self._by_id.get(agent_id)

    def by_extension(self, extension: str) -> Agent | None:
        return self._by_extension.get(extension)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_KNOWN = {
    "id", "extensions", "name", "phone", "slogan", "avatar", "title", "language", "greeting",
    "satisfaction", "satisfaction_votes", "calls_handled", "customers_served",
    "service_records", "reviews", "__line__",
}


def _text(entry: dict[str, Any], key: str, where: str, problems: list[str], *,
          required: bool = False) -> str:
    value = entry.get(key)
    if value is None:
        if required:
            problems.append(f"{where}: agent is missing '{key}'")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        problems.append(f"{where}: '{key}' must be text, got {type(value).__name__}")
        return ""
    return str(value).strip()


def _count(entry: dict[str, Any], key: str, where: str, problems: list[str]) -> int:
    value = entry.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}: '{key}' must be a whole number >= 0, got {value!r}")
        return 0
    return value


def _file(base: Path, value: str, where: str, key: str, problems: list[str]) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        problems.append(f"{where}: {key} file not found: {path}")
        return None
    return path


def _records(entry: dict[str, Any], where: str, problems: list[str]) -> tuple[ServiceRecord, ...]:
    raw = entry.get("service_records") or []
    if not isinstance(raw, list):
        problems.append(f"{where}: 'service_records' must be a list")
        return ()
    records = []
    for item in raw:
        if isinstance(item, str):
            records.append(ServiceRecord(title=item))
        elif isinstance(item, dict) and item.get("title"):
            records.append(ServiceRecord(title=str(item["title"]), detail=str(item.get("detail", "")),
                                         date=str(item.get("date", ""))))
        else:
            problems.append(f"{where}: each service record needs a 'title'")
    return tuple(records)


def _reviews(entry: dict[str, Any], where: str, problems: list[str]) -> tuple[Review, ...]:
    raw = entry.get("reviews") or []
    if not isinstance(raw, list):
        problems.append(f"{where}: 'reviews' must be a list")
        return ()
    reviews = []
    for item in raw:
        line = item.get("__line__", "?") if isinstance(item, dict) else "?"
        stars = item.get("stars") if isinstance(item, dict) else None
        if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
            problems.append(f"{where.rsplit(':', 1)[0]}:{line}: review 'stars' must be 1..5")
            continue
        reviews.append(Review(stars=stars, text=str(item.get("text", "")),
                              author=str(item.get("author", "")), date=str(item.get("date", ""))))
    return tuple(reviews)


def parse_agents(text: str, source: Path) -> AgentDirectory:
    """Parse agents YAML text; `source` names the file and anchors relative paths."""
    base = source.parent
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else str(source)
        problem = getattr(exc, "problem", None) or str(exc)
        raise AgentsError(str(source), [f"{where}: not valid YAML: {problem}"]) from None
    if not isinstance(document, dict) or not isinstance(document.get("agents"), list):
        raise AgentsError(str(source), [f"{source}:1: expected a top-level 'agents:' list"])

    problems: list[str] = []
    agents: list[Agent] = []
    seen_ids: dict[str, str] = {}
    seen_extensions: dict[str, str] = {}
    for entry in document["agents"]:
        if not isinstance(entry, dict):
            problems.append(f"{source}: each item of 'agents' must be a mapping")
            continue
        where = f"{source}:{entry.get('__line__', '?')}"
        for key in sorted(set(entry) - _KNOWN):
            problems.append(f"{where}: unknown field '{key}'")
        agent_id = _text(entry, "id", where, problems, required=True)
        if agent_id in seen_ids:
            problems.append(f"{where}: duplicate id '{agent_id}' (first at {seen_ids[agent_id]})")
        seen_ids.setdefault(agent_id, where)
        raw_ext = entry.get("extensions")
        if not isinstance(raw_ext, list) or not raw_ext:
            problems.append(f"{where}: 'extensions' must be a non-empty list")
            raw_ext = []
        extensions = tuple(str(e).strip() for e in raw_ext if str(e).strip())
        for ext in extensions:
            if ext in seen_extensions and seen_extensions[ext] != agent_id:
                problems.append(f"{where}: extension '{ext}' already belongs to '{seen_extensions[ext]}'")
            seen_extensions.setdefault(ext, agent_id)
        satisfaction = entry.get("satisfaction")
        if satisfaction is not None and (
            isinstance(satisfaction, bool) or not isinstance(satisfaction, (int, float))
            or not 1 <= satisfaction <= 5
        ):
            problems.append(f"{where}: 'satisfaction' must be a score from 1 to 5")
            satisfaction = None
        agents.append(Agent(
            id=agent_id,
            extensions=extensions,
            name=_text(entry, "name", where, problems, required=True),
            phone=_text(entry, "phone", where, problems, required=True),
            slogan=_text(entry, "slogan", where, problems),
            avatar=_file(base, _text(entry, "avatar", where, problems), where, "avatar", problems),
            title=_text(entry, "title", where, problems),
            language=_text(entry, "language", where, problems),
            greeting=_file(base, _text(entry, "greeting", where, problems), where, "greeting", problems),
            satisfaction=float(satisfaction) if satisfaction is not None else None,
            satisfaction_votes=_count(entry, "satisfaction_votes", where, problems),
            calls_handled=_count(entry, "calls_handled", where, problems),
            customers_served=_count(entry, "customers_served", where, problems),
            service_records=_records(entry, where, problems),
            reviews=_reviews(entry, where, problems),
        ))
    channel_map = document.get("channel_map") or {}
    if not isinstance(channel_map, dict):
        problems.append(f"{source}: 'channel_map' must map channel names to extensions")
        channel_map = {}
    channel_map.pop("__line__", None)
    if problems:
        raise AgentsError(str(source), problems)
    return AgentDirectory(agents, {str(k): str(v) for k, v in channel_map.items()})


def load_agents(path: Path) -> AgentDirectory:
    """Read and validate the agents file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AgentsError(str(path), [f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentsError(str(path), [f"{path}: cannot read: {exc}"]) from None
    return parse_agents(text, path)
