"""Helpers shared by sub-commands: progress bars, JSON output, remote-model flags."""

from __future__ import annotations

import argparse
import json
import math
import re
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


def _line_note(info: ProgressInfo) -> str:
    """The stage or item and its detail (e.g. ``features (2 workers)``), cut to fit."""
    text = f"{info.message} ({info.detail})" if info.detail else info.message
    return text if len(text) <= 56 else text[:55] + "…"


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
    from cuelab.core.audio.mixing import parse_snr
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
    from cuelab.core.models.remote.spec import PROMPT_FAMILIES, SCORING_CHOICES

    g = parser.add_argument_group(
        "models behind OpenAI-compatible servers (--model openai:URL[,URL...][#MODEL])"
    )
    g.add_argument(
        "--scoring",
        choices=SCORING_CHOICES,
        help="closed-set scoring: first-token log-probabilities, whole-label continuation "
        "(prompt_logprobs), or generate and parse (default auto: the most exact the server allows)",
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
