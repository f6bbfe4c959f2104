"""Tables that fit the terminal: numbers are never cut, text folds, and what still doesn't fit
goes by priority.

rich alone squeezes every column of a wide table, numbers included ("360… MB", headers "im…").
Here each column says whether it may fold (wrap onto more lines, down to a narrowest width) or
must be shown whole (numbers, sizes, digests); headers wrap at their spaces. A command offers
its layouts in order of preference and gets the first that fits (`first_fitting`), and
`fitted_table` gives the text columns the room that is left.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.table import Table
from rich.text import Text

SEPARATOR = 3
"""Columns are separated by " │ "; the table has no outer edge."""
COMFORTABLE = 40
"""Text folds this narrow before headers wrap; narrower only when nothing else gives."""


@dataclass(frozen=True)
class Column:
    """One column: its header, its cells, and how it may give up room."""

    header: str
    cells: Sequence[str | Text]
    justify: Literal["left", "right"] = "left"
    fold: int | None = None
    """The narrowest this text column may wrap to; None: always whole (numbers, sizes, ids)."""
    style: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def cell_width(cell: str | Text) -> int:
    """The widest line of a cell as shown (markup in plain strings doesn't count)."""
    text = cell if isinstance(cell, Text) else Text.from_markup(cell)
    return max((len(line) for line in text.plain.splitlines()), default=0)


def _header_floor(column: Column) -> int:
    return max((len(word) for word in column.header.split()), default=0)


def _widest_cell(column: Column) -> int:
    return max((cell_width(cell) for cell in column.cells), default=0)


def natural_width(column: Column) -> int:
    """What the column takes when nothing needs to fold: its widest cell, its header whole."""
    return max(_widest_cell(column), len(column.header))


def _compact_width(column: Column) -> int:
    """Its width with the header wrapped at its spaces, the cells still whole."""
    return max(_widest_cell(column), _header_floor(column))


def narrowest(column: Column) -> int:
    if column.fold is None:
        return _compact_width(column)
    return min(_compact_width(column), max(column.fold, _header_floor(column)))


def minimum_width(columns: Sequence[Column]) -> int:
    """The fewest terminal columns these columns fit in, every text column folded."""
    return sum(narrowest(c) for c in columns) + SEPARATOR * max(0, len(columns) - 1)


def first_fitting(layouts: Sequence[Sequence[Column]], width: int) -> Sequence[Column]:
    """The first layout that fits `width`; the last (the most compact) when none does."""
    for layout in layouts:
        if minimum_width(layout) <= width:
            return layout
    return layouts[-1]


def widths(columns: Sequence[Column], width: int) -> list[int]:
    """Each column's width: natural widths; then long text folds to a comfortable width, then
    headers wrap (a whole column at a time, widest first), then text folds further. Room a
    wrapped header frees beyond what was needed goes back to the folded text."""
    sizes = [natural_width(c) for c in columns]
    excess = sum(sizes) + SEPARATOR * max(0, len(columns) - 1) - width
    comfortable = [
        size if c.fold is None else max(narrowest(c), min(size, COMFORTABLE))
        for c, size in zip(columns, sizes, strict=True)
    ]
    excess = _shrink(sizes, comfortable, excess)
    by_header_room = sorted(
        (n for n, c in enumerate(columns) if c.fold is None),
        key=lambda n: _compact_width(columns[n]) - sizes[n],
    )
    for n in by_header_room:
        if excess <= 0:
            break
        excess -= sizes[n] - _compact_width(columns[n])
        sizes[n] = _compact_width(columns[n])
    excess = _shrink(sizes, [narrowest(c) for c in columns], excess)
    for n, column in enumerate(columns):  # slack back to the text that folded
        if excess < 0 and column.fold is not None:
            grow = min(-excess, natural_width(column) - sizes[n])
            sizes[n] += grow
            excess += grow
    return sizes


def _shrink(sizes: list[int], floors: Sequence[int], excess: int) -> int:
    """Take `excess` from the widest columns above their floors, one at a time; what is left."""
    while excess > 0:
        room = [size - floor for size, floor in zip(sizes, floors, strict=True)]
        if max(room, default=0) <= 0:
            break
        widest = max(range(len(sizes)), key=lambda n: (room[n] > 0, sizes[n]))
        sizes[widest] -= 1
        excess -= 1
    return excess


def fitted_table(columns: Sequence[Column], width: int, **table_options: Any) -> Table:
    """A rich Table of these columns at most `width` wide (if they can fit at all)."""
    table = Table(show_edge=False, pad_edge=False, **table_options)
    for column, size in zip(columns, widths(columns, width), strict=True):
        header = "\n".join(textwrap.wrap(column.header, size, break_on_hyphens=False))
        table.add_column(
            header or column.header,
            justify=column.justify,
            width=size,
            no_wrap=column.fold is None,
            overflow="fold",
            style=column.style,
            **column.options,
        )
    for row in zip(*(column.cells for column in columns), strict=True):
        table.add_row(*row)
    return table
