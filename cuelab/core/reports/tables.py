"""Tables in the papers' shape (placeholder, filled below)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_emotion_tables(folder: Path, record: dict[str, Any], *, plots: bool = True) -> list[Path]:
    """Write tables/ of an emotion run."""
    return []


def write_sseu_tables(folder: Path) -> list[Path]:
    """Write tables/ of an SSEU run."""
    return []
