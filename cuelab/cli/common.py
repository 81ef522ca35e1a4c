"""Helpers shared by sub-commands: progress bars and JSON output."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from cuelab.core.jobs import JobControl, ProgressInfo


def json_line(obj: Any) -> str:
    """One compact JSON line (NaN/inf become null, never invalid JSON)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), ensure_ascii=False)


def progress_control(label: str, enabled: bool | None = None) -> JobControl:
    """A :class:`JobControl` that draws a one-line progress bar on stderr (TTY only by default)."""
    show = sys.stderr.isatty() if enabled is None else enabled

    def draw(info: ProgressInfo) -> None:
        if not show or info.total <= 0:
            return
        width = 28
        filled = int(width * info.done / info.total)
        eta = f"{info.eta_s:5.0f}s" if info.eta_s is not None else "    ?"
        sys.stderr.write(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {info.done}/{info.total}"
            f" {info.rate:5.1f}/s eta {eta}"
        )
        if info.done >= info.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return JobControl(on_progress=draw)
