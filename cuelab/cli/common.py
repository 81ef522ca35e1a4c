"""Helpers shared by sub-commands: progress bars, JSON output, remote-model flags."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable
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


#: Seconds between plain progress lines when stderr is not a terminal (SLURM, nohup, a pipe).
PROGRESS_SECONDS = 30.0


def _progress_interval() -> float:
    """``CUELAB_PROGRESS_SECONDS`` (0: a line per item), else :data:`PROGRESS_SECONDS`."""
    import os

    try:
        value = float(os.environ.get("CUELAB_PROGRESS_SECONDS", PROGRESS_SECONDS))
    except ValueError:
        return PROGRESS_SECONDS
    return value if value >= 0 else PROGRESS_SECONDS


def plain_progress(label: str, every_s: float) -> Callable[[ProgressInfo], None]:
    """Progress as plain lines for logs: one every ``every_s`` seconds of a stage.

    A job log under SLURM or nohup cannot show a bar redrawn with ``\r``; it gets
    ``eval: scoring 40/96 (42%) 1.3/s elapsed 30s eta 43s`` lines instead, flushed at
    once, and the end of a stage that printed any. A job shorter than ``every_s``
    prints nothing, so a quick command's error stays its only line.
    """
    state: dict[str, Any] = {"stage": "", "last": 0.0, "printed": False}

    def line(info: ProgressInfo) -> None:
        if info.total <= 0:
            return
        now = time.monotonic()
        if info.done == 0:  # a stage starts
            state.update(stage=info.message or state["stage"], last=now, printed=False)
            if every_s > 0:
                return
        ends = info.done >= info.total
        due = now - state["last"] >= every_s
        if not (due or (ends and state["printed"])):
            return
        state.update(last=now, printed=True)
        pct = 100.0 * info.done / info.total
        eta = f" eta {info.eta_s:.0f}s" if info.eta_s is not None and not ends else ""
        stage = f"{state['stage']} " if state["stage"] else ""
        sys.stderr.write(
            f"{label}: {stage}{info.done}/{info.total} ({pct:.0f}%) {info.rate:.2f}/s"
            f" elapsed {info.elapsed_s:.0f}s{eta}\n"
        )
        sys.stderr.flush()

    return line


def _line_note(info: ProgressInfo) -> str:
    """The stage or item and its detail (e.g. ``features (2 workers)``), cut to fit."""
    text = f"{info.message} ({info.detail})" if info.detail else info.message
    return text if len(text) <= 56 else text[:55] + "…"


def progress_control(label: str, enabled: bool | None = None) -> JobControl:
    """A :class:`JobControl` that reports progress on stderr.

    On a terminal: a one-line bar redrawn in place. Elsewhere (a log file, SLURM,
    nohup): a plain line at each stage's start and end and every
    ``CUELAB_PROGRESS_SECONDS`` (default 30). ``enabled=False`` silences both,
    ``enabled=True`` forces the bar.
    """
    tty = sys.stderr.isatty()
    show = tty if enabled is None else enabled
    if enabled is None and not tty:
        return JobControl(on_progress=plain_progress(label, _progress_interval()))

    def draw(info: ProgressInfo) -> None:
        if not show or info.total <= 0:
            return
        width = 28
        filled = int(width * info.done / info.total)
        eta = f"{info.eta_s:5.0f}s" if info.eta_s is not None else "    ?"
        sys.stderr.write(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {info.done}/{info.total}"
            f" {info.rate:5.1f}/s eta {eta} {_line_note(info):<56}"
        )
        if info.done >= info.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return JobControl(on_progress=draw)


# argparse reads "-inf", "-1e3" and "-5,0" as options unless told they are numbers.
_NEGATIVE_NUMBERS = re.compile(
    r"^-(\d+\.?\d*|\.\d+|inf(inity)?)([eE][-+]?\d+)?(,[-+]?[\w.]+)*$", re.IGNORECASE
)


def accept_negative_numbers(parser: argparse.ArgumentParser) -> None:
    """Let ``parser`` take ``--snr -inf`` or ``--snrs -5,0`` as values, not options."""
    parser._negative_number_matcher = _NEGATIVE_NUMBERS  # type: ignore[attr-defined]


def snr_arg(text: str) -> float:
    """argparse type for one SNR: a number of dB, ``inf``, ``+inf`` or ``-inf``."""
    values = snr_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one SNR in dB (or inf, -inf)")
    return values[0]


def snr_list(text: str) -> list[float]:
    """argparse type for comma-separated SNRs (``inf`` and ``-inf`` allowed)."""
    from cuelab.core.audio import parse_snr
    from cuelab.core.errors import CueLabError

    try:
        values = [parse_snr(part) for part in text.split(",") if part.strip()]
    except CueLabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} holds no SNR")
    return values


def add_label_score_argument(parser: argparse.ArgumentParser) -> None:
    """``--label-score sum|mean``: how a label's continuation is ranked."""
    parser.add_argument(
        "--label-score",
        choices=("sum", "mean"),
        help="rank labels by the sum of their token log-probabilities (default) or the mean "
        "per token (length-normalised)",
    )


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scoring``, ``--family`` and ``--concurrency`` for ``openai:`` model specs."""
    from cuelab.core.models import PROMPT_FAMILIES, SCORING_CHOICES

    g = parser.add_argument_group(
        "models behind OpenAI-compatible servers (--model openai:URL[,URL...][#MODEL])"
    )
    g.add_argument(
        "--scoring",
        choices=SCORING_CHOICES,
        help="closed-set scoring, served or in-process audio LMs alike: first-token "
        "log-probabilities, whole-label continuation, or generate and parse "
        "(default auto: continuation, or the next the server allows)",
    )
    g.add_argument(
        "--family",
        dest="prompt_family",
        choices=sorted(PROMPT_FAMILIES),
        help="system prompt of a known family (default server: none, the chat template decides)",
    )
    g.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="requests in flight over all endpoints (default 16); the API key comes from "
        "CUELAB_API_KEY or OPENAI_API_KEY",
    )
