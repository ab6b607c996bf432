"""The shell commands and Python snippets of README.md and docs/*.md, as a reader sees them.

A ```bash block is a list of commands (one per line; ``#`` lines are comments). A block right
after an HTML comment ``<!-- not run: <reason> -->`` is not run by ``docs/walkthrough.py``
(it needs the network, GPUs, or hours), and the reason says why; every other block is run,
in order, as printed. ``tests/test_docs.py`` checks every command of both kinds statically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/data.md", "docs/training.md", "docs/evaluation.md",
         "docs/tracking.md", "docs/tuning.md", "docs/writeups.md", "docs/reliability.md", "docs/benchmarks.md"]
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not run: (.+) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: str
    line: int  # 1-based line of the opening fence
    language: str  # bash, python, or "" (output)
    text: str
    skip: str | None  # why the walkthrough does not run it

    def commands(self) -> list[str]:
        """The block's commands (bash): its non-empty lines that are not comments."""
        return [ln.strip() for ln in self.text.splitlines()
                if ln.strip() and not ln.strip().startswith("#")]


def blocks(page: str) -> list[Block]:
    """Every fenced block of ``page`` (relative to the repo root), in order."""
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = _NOT_RUN.match(before)
        found.append(Block(page, i + 1, opening.group(1), "\n".join(lines[i + 1:end]),
                           skip.group(1) if skip else None))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    """Every fenced block of every page, in reading order."""
    return [b for page in PAGES for b in blocks(page)]
