"""Markdown tables: the one renderer behind every table the reports write (results/*.md, REPORT.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Alignment row cell per column: '-' is markdown's default (left, unmarked), the form every table used first.
_RULES = {"-": "---", "l": ":---", "r": "---:", "c": ":---:"}


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> list[str]:
    """The header line, the alignment row and one line per row, each cell as str() shows it. align: one
    character per column, '-', 'l', 'r' or 'c' (None: '-' for all)."""
    align = "-" * len(header) if align is None else align
    if len(align) != len(header) or set(align) - set(_RULES):
        raise ValueError(f"align {align!r}: one of {''.join(_RULES)} per column ({len(header)})")
    return [_line(header), "|" + "".join(f"{_RULES[a]}|" for a in align), *(_line(row) for row in rows)]


def _line(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"
