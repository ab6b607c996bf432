"""Tables as a person reads them: aligned text for the terminal (at most 120 columns), Markdown
for report files. No library here prints a width-capped plain table without pulling in a
dependency the package does not otherwise need (tabulate, rich), so it is a few lines here."""

from __future__ import annotations

import textwrap
from typing import Sequence

WIDTH = 120  # a terminal line
GAP = "  "
_NUMBER = set("0123456789.,%±–-+e ")


def wrap(line: str, width: int = WIDTH) -> str:
    """A long message as lines of at most ``width`` (paths are never split)."""
    return textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (for files: compare.md, summary.md)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def text(header: Sequence[str], rows: Sequence[Sequence[str]], width: int = WIDTH,
         shrink: Sequence[str] = (), drop: Sequence[str] = ()) -> tuple[str, list[str]]:
    """An aligned plain-text table no wider than ``width``, and the columns it left out.

    Over ``width``, the ``shrink`` columns are cut (with "…") to their header's width or 12
    characters, whichever is more; then ``drop`` columns are left out in that order. Numbers
    are right-aligned.
    """
    header, rows = list(header), [list(row) for row in rows]
    widths = {name: max([len(name), *(len(row[i]) for row in rows)])
              for i, name in enumerate(header)}

    def total(columns: list[str]) -> int:
        return sum(widths[c] for c in columns) + len(GAP) * (len(columns) - 1)

    for name in shrink:
        if total(header) > width and name in widths:
            widths[name] = min(widths[name], max(len(name), 12))
    shown = list(header)
    for name in drop:
        if total(shown) > width and name in shown:
            shown.remove(name)
    index = {name: i for i, name in enumerate(header)}

    def numeric(cell: str) -> bool:
        return any(ch.isdigit() for ch in cell) and all(ch in _NUMBER for ch in cell)

    # a column of numbers (and dashes for none) is right-aligned, its header too
    columns = {name: [row[index[name]] for row in rows] for name in shown}
    right = {name: any(map(numeric, cells)) and all(numeric(c) or c in ("", "–", "?") for c in cells)
             for name, cells in columns.items()}

    def line(cells: list[str]) -> str:
        out = [_cut(cells[index[name]], widths[name]) for name in shown]
        return GAP.join(cell.rjust(widths[name]) if right[name] else cell.ljust(widths[name])
                        for cell, name in zip(out, shown)).rstrip()

    lines = [line(header), GAP.join("─" * widths[name] for name in shown)]
    lines += [line(row) for row in rows]
    return "\n".join(lines) + "\n", [name for name in header if name not in shown]
