"""A complete ccshortlink.toml written into a test's folder, with the example agents."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository: etc/, README.md, pyproject
# Two PBXs, each with its own 1001: the agent is told apart by the PBX the call came from
# (one extension qualified as "site-a:1001", the other written the long way).
TWO_SITE_AGENTS = """\
agents:
  - id: CSA1001
    extensions: ["site-a:1001"]
    name: Ann Site-A
    phone: "+862088880001"
  - id: CSB1001
    extensions:
      - {pbx: site-b, extension: "1001"}
    name: Bob Site-B
    phone: "+862088880002"
"""


def write_config(folder: Path, **sections: dict[str, object] | list[dict[str, object]]) -> Path:
    """A complete ccshortlink.toml in `folder`, with the example agents; override per section.

    A list of tables replaces the section by an array of tables: `ami=[{...}, {...}]` writes
    two [[ami]] tables.
    """
    shutil.copy(ROOT / "etc" / "agents.yaml", folder / "agents.yaml")
    shutil.copytree(ROOT / "etc" / "avatars", folder / "avatars", dirs_exist_ok=True)
    base: dict[str, dict[str, object]] = {
        "ami": {"host": "127.0.0.1", "port": 5038, "username": "ccshortlink", "secret": "s3cret"},
        "smpp": {"host": "127.0.0.1", "port": 2775, "system_id": "ccshortlink",
                 "password": "pw", "source_addr": "95566"},
        "web": {"listen": "127.0.0.1:0", "public_url": "https://cs.example.com"},
        "database": {"path": "state/ccshortlink.db"},
        "agents": {"file": "agents.yaml"},
        "policy": {"min_talk_seconds": 1, "default_region": "CN"},
    }
    if "url" in sections.get("database", {}):  # PostgreSQL instead of the SQLite file
        base["database"] = {}
    arrays: dict[str, list[dict[str, object]]] = {}
    for name, values in sections.items():
        if isinstance(values, list):
            arrays[name] = values
            base.pop(name, None)
        else:
            base.setdefault(name, {}).update(values)
    lines = []
    tables = [(f"[{name}]", values) for name, values in base.items()]
    tables += [(f"[[{name}]]", values) for name, items in arrays.items() for values in items]
    for header, values in tables:
        lines.append(header)
        for key, value in values.items():
            lines.append(f"{key} = {_toml(value)}")
        lines.append("")
    path = folder / "ccshortlink.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table: {"zh-CN" = "...", en = "..."}
        return "{" + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
