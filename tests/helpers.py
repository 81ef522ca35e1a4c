"""Small helpers shared by the tests."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts (raw cells, as a spreadsheet would see them)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def num(cell: str) -> float:
    """A numeric cell; an empty cell is NaN."""
    return math.nan if cell == "" else float(cell)
