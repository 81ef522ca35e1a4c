"""PNG figures of a run: confusion matrices, UAR over corruption, token gain.

matplotlib is imported inside the functions and drawn through its
object-oriented API on an Agg canvas (no pyplot, no global backend), so
reports can be built from a worker thread of the window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cuelab.core.reports.stats import AUDIO_ONLY, MEAN_SEED, SummaryRow, corruption_levels


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def model_slugs(models: Sequence[str]) -> dict[str, str]:
    """A short, file-safe, unique name per model spec (family + last path part)."""
    out: dict[str, str] = {}
    for spec in models:
        family, _, location = spec.partition(":")
        tail = Path(location.rstrip("/\\")).name if location else ""
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{family}_{tail}" if tail else family).strip("_")
        slug, k = base or "model", 2
        while slug in out.values():
            slug, k = f"{base}-{k}", k + 1
        out[spec] = slug
    return out


def confusion_figure(
    path: Path,
    model: str,
    counts: dict[str, np.ndarray],
    labels: Sequence[str],
) -> Path:
    """One panel per condition: row-normalised shading, counts written in the cells."""
    n = len(counts)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _figure(3.0 * cols + 0.5, 2.9 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    xlabels = [*labels, "unp."]
    for ax, (name, mat) in zip(axes, counts.items()):
        share = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(mat):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] > 0.6 else "black",
            )
        ax.set_xticks(range(len(xlabels)), xlabels, rotation=45, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_title(name, fontsize=9)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{model}: reference (rows) vs prediction (columns)", fontsize=10)
    fig.savefig(path)
    return path


def corruption_figure(path: Path, summary: Sequence[SummaryRow], models: Sequence[str]) -> Path:
    """UAR against corruption p (``correct`` at p = 0), mean over seeds with its CI."""
    fig = _figure(5.5, 3.8)
    ax = fig.add_subplot()
    for model in models:
        points = corruption_levels(summary, model)
        levels = sorted({p for p, _ in points})
        ys, lows, highs = [], [], []
        for p in levels:
            rs = [r for q, r in points if q == p]
            mean = next(
                (
                    r
                    for r in summary
                    if r.model == model and r.seed == MEAN_SEED and r.condition == rs[0].condition
                ),
                None,
            )
            row = mean if mean is not None else rs[0]
            ys.append(row.uar)
            lows.append(row.uar - row.uar_ci_low if math.isfinite(row.uar_ci_low) else 0.0)
            highs.append(row.uar_ci_high - row.uar if math.isfinite(row.uar_ci_high) else 0.0)
        ax.errorbar(levels, ys, yerr=[lows, highs], marker="o", capsize=3, label=model)
    ax.set_xlabel("corruption probability p (correct tokens at 0)")
    ax.set_ylabel("UAR")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path)
    return path


def gain_figure(path: Path, summary: Sequence[SummaryRow], models: Sequence[str]) -> Path:
    """UAR of each token condition minus audio-only, per model (seed means where present)."""
    gains: dict[str, dict[str, float]] = {}
    for model in models:
        base = next(
            (r.uar for r in summary if r.model == model and r.condition == AUDIO_ONLY), None
        )
        if base is None:
            continue
        best: dict[str, SummaryRow] = {}
        for r in summary:
            keep = r.condition not in best or r.seed == MEAN_SEED
            if r.model == model and r.condition != AUDIO_ONLY and keep:
                best[r.condition] = r
        gains[model] = {c: r.uar - base for c, r in best.items()}
    conditions = list(dict.fromkeys(c for g in gains.values() for c in g))
    fig = _figure(max(4.5, 0.6 * len(conditions) * max(1, len(gains)) + 2), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(gains))
    x = np.arange(len(conditions))
    for k, (model, g) in enumerate(gains.items()):
        ax.bar(x + k * width, [g.get(c, np.nan) for c in conditions], width, label=model)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x + width * (len(gains) - 1) / 2, conditions, rotation=30, fontsize=8)
    ax.set_ylabel("UAR gain over audio-only")
    ax.legend(fontsize=7)
    fig.savefig(path)
    return path
