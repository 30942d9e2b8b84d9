"""A complete ccshortlink.toml written into a test's folder, with the example agents."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository: etc/, README.md, pyproject


def write_config(folder: Path, **sections: dict[str, object]) -> Path:
    """A complete ccshortlink.toml in `folder`, with the example agents; override per section."""
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
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
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
