"""The one error shape for unusable input files: a source and every problem found in it."""

from __future__ import annotations


class ProblemsError(Exception):
    """`problems` lists every reason, so an admin fixes the file in one pass."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")
