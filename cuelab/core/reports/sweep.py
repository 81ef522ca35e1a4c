"""The sweep figure: P(label) and concept scores against an edit's amount.

Reads the tables :mod:`cuelab.core.runs.sweep` produces (one clip: its points;
a manifest: the mean curves with their 95 % intervals drawn as bands).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cuelab.core.cues.concepts import BINNED_CONCEPTS
from cuelab.core.reports.plots import _figure


def _float(cell: object) -> float:
    try:
        return float(str(cell))
    except ValueError:
        return float("nan")


def sweep_figure(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    labels: Sequence[str],
    xlabel: str,
    title: str,
) -> Path:
    """Two panels (labels, concepts); ``rows`` are one clip's points or mean curves."""
    col = {name: i for i, name in enumerate(header)}
    mean = "n" in col  # mean curves: <series>_mean, _ci_low, _ci_high
    xs = [_float(r[col["amount"]]) for r in rows]
    fig = _figure(9.0, 3.4)
    left, right = fig.subplots(1, 2)
    panels = (
        (left, [f"p_{lab}" for lab in labels], labels, "P(label)"),
        (right, [f"score_{c}" for c in BINNED_CONCEPTS], BINNED_CONCEPTS, "concept score"),
    )
    for ax, names, shown, ylabel in panels:
        for name, legend in zip(names, shown):
            key = f"{name}_mean" if mean else name
            if key not in col:
                continue
            ys = [_float(r[col[key]]) for r in rows]
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=legend)
            if mean:
                lo = [_float(r[col[f"{name}_ci_low"]]) for r in rows]
                hi = [_float(r[col[f"{name}_ci_high"]]) for r in rows]
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)
    return path
