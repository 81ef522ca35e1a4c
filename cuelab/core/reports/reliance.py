"""Reliance on tokens and calibration of label probabilities, from a run's predictions.

Writes (definitions in README "Analysis" and docs/analysis.md):

* ``reliance.csv``: per model × condition × seed against the aligned
  condition (``correct``): ``swap_rate``, ``js_mean``, ``helped``, ``hurt``,
  and the model's prediction-frequency baseline (``freq_baseline_uar``,
  ``freq_baseline_wa``; LISTEN, 2026) under that condition;
* ``reliance_index.csv``: per model, the token-reliance index
  TRI = (UAR_correct − UAR_conflict) / (UAR_correct − UAR_audio-only) with a
  paired speaker-bootstrap interval;
* ``calibration.csv``: per model × condition × seed and ``calibration``
  (``none``, ``batch``, ``contextual``): UAR, ``ece``, ``brier``, ``nll`` and
  the distribution divided out (``content_free``); ``n/a`` where a group has
  no label probabilities (generated-and-parsed answers);
* ``reliability.png``: reliability diagrams of each model's raw and
  calibrated probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cuelab.core.metrics import reliance as rl
from cuelab.core.reports.stats import AUDIO_ONLY, CORRECT, Group
from cuelab.core.runs import record as rec
from cuelab.core.runs.csvio import read_complete_rows, write_csv
from cuelab.core.runs.folder import RunFolder

RELIANCE_CSV = "reliance.csv"
RELIANCE_INDEX_CSV = "reliance_index.csv"
CALIBRATION_CSV = "calibration.csv"
CONTENT_FREE_CSV = "content_free.csv"
NA = "n/a"

Key = tuple[str, str, str]
Probs = dict[Key, dict[str, np.ndarray]]


def _num(x: float) -> str:
    return "" if x is None or not math.isfinite(x) else format(float(x), ".6g")


def load_probabilities(folder: Path, record: rec.RunRecord, labels: Sequence[str]) -> Probs:
    """Per (model, condition, seed), utt id → probability row in label order (NaN when absent)."""
    header, rows, _ = read_complete_rows(RunFolder(folder).predictions, rec.row_check(record))
    keys = [header.index(c) for c in ("utt_id", "model", "condition", "seed")]
    cols = [header.index(f"p_{lab}") if f"p_{lab}" in header else -1 for lab in labels]
    if "edit" in header:  # an edit run: reliance and calibration are of the original audio
        e = header.index("edit")
        rows = [r for r in rows if r[e] == "none"]
    out: Probs = {}
    for r in rows:
        u, m, c, s = (r[i] for i in keys)
        cells = [r[i] if i >= 0 else "" for i in cols]
        row = np.array([float(x) if x else math.nan for x in cells])
        out.setdefault((m, c, s), {})[u] = row
    return out


def _stack(probs: dict[str, np.ndarray], ids: Sequence[str], k: int) -> np.ndarray:
    return np.array([probs.get(u, np.full(k, math.nan)) for u in ids]).reshape(len(ids), k)


def reliance_rows(
    groups: dict[Key, Group], keys: Sequence[Key], probs: Probs, labels: Sequence[str]
) -> list[list[object]]:
    """The rows of reliance.csv (see the module docstring)."""
    out: list[list[object]] = []
    for key in keys:
        model, condition, seed = key
        g = groups[key]
        _, y, pred, _ = g.arrays()
        base_uar, base_wa = rl.frequency_baseline(y, pred)
        ref = groups.get((model, CORRECT, ""))
        cells: list[object] = ["", "", "", "", ""]
        if ref is not None:
            ids = sorted(set(ref.items) & set(g.items))
            yy = [ref.items[u][0] for u in ids]
            swap, helped, hurt = rl.swap_counts(
                yy, [ref.items[u][1] for u in ids], [g.items[u][1] for u in ids]
            )
            k = len(labels)
            pa = _stack(probs.get((model, CORRECT, ""), {}), ids, k)
            pb = _stack(probs.get(key, {}), ids, k)
            js = (
                math.nan
                if np.isnan(pa).any() or np.isnan(pb).any()
                else float(rl.js_distances(pa, pb).mean())
            )
            cells = [len(ids), _num(swap), _num(js), helped, hurt]
        out.append([model, condition, seed, CORRECT if ref is not None else "", *cells,
                    _num(base_uar), _num(base_wa)])  # fmt: skip
    return out


RELIANCE_HEADER = [
    "model", "condition", "seed", "reference", "n", "swap_rate", "js_mean", "helped", "hurt",
    "freq_baseline_uar", "freq_baseline_wa",
]  # fmt: skip


def reliance_index_rows(
    groups: dict[Key, Group], models: Sequence[str], n_resamples: int, seed: int
) -> list[list[object]]:
    """The rows of reliance_index.csv: one per model that ran audio-only, correct and conflict."""
    out: list[list[object]] = []
    for model in models:
        parts = [groups.get((model, c, "")) for c in (AUDIO_ONLY, CORRECT, "conflict")]
        if any(p is None for p in parts):
            continue
        a, c, f = (p for p in parts if p is not None)
        ids = sorted(set(a.items) & set(c.items) & set(f.items))
        y = [a.items[u][0] for u in ids]
        spk = [a.items[u][2] or u for u in ids]
        ci, gain, loss, kept = rl.reliance_index(
            y, [a.items[u][1] for u in ids], [c.items[u][1] for u in ids],
            [f.items[u][1] for u in ids], groups=spk, n_resamples=n_resamples, seed=seed,
        )  # fmt: skip
        note = ""
        if gain <= 0:  # no index, so no interval around it either
            ci = ci._replace(low=math.nan, high=math.nan)
            note = "undefined: correct tokens do not raise UAR over audio-only"
        elif kept < n_resamples:
            note = f"interval from the {kept} of {n_resamples} replicates with a positive gain"
        out.append([model, len(ids), _num(gain), _num(loss), _num(ci.point), _num(ci.low),
                    _num(ci.high), kept, note])  # fmt: skip
    return out


RELIANCE_INDEX_HEADER = [
    "model", "n", "gain", "loss", "tri", "tri_ci_low", "tri_ci_high", "replicates_defined", "note",
]  # fmt: skip


def _dist(labels: Sequence[str], p: np.ndarray) -> str:
    return ";".join(f"{lab}={v:.6g}" for lab, v in zip(labels, p))


def calibration_rows(
    groups: dict[Key, Group],
    keys: Sequence[Key],
    probs: Probs,
    labels: Sequence[str],
    methods: Sequence[str],
    content_free: dict[tuple[str, str], np.ndarray] | None = None,
) -> tuple[list[list[object]], dict[tuple[str, str], np.ndarray]]:
    """The rows of calibration.csv and, per (model, calibration), the arrays of the plot."""
    out: list[list[object]] = []
    plot: dict[tuple[str, str], list[np.ndarray]] = {}
    for key in keys:
        model, condition, seed = key
        ids, y, pred, _ = groups[key].arrays()
        p = _stack(probs.get(key, {}), ids, len(labels))
        scored = not np.isnan(p).any()
        from cuelab.core import metrics

        for method in ("none", *methods):
            head = [model, condition, seed, method, len(ids)]
            if not scored:
                uar = _num(metrics.uar(y, pred)) if method == "none" else NA
                out.append([*head, uar, NA, NA, NA, NA])
                continue
            cf = ""
            if method == "none":
                q = rl._normalised(p)
            elif method == "batch":
                q, prior = rl.batch_calibrate(p)
                cf = _dist(labels, prior)
            else:
                dist = (content_free or {}).get((model, condition))
                if dist is None or np.isnan(dist).any():
                    out.append([*head, NA, NA, NA, NA, NA])
                    continue
                q = rl.contextual_calibrate(p, dist)
                cf = _dist(labels, rl._normalised(dist[None, :])[0])
            top = [labels[i] for i in q.argmax(axis=1)]
            out.append([*head, _num(metrics.uar(y, top)), _num(rl.ece(q, y, labels)),
                        _num(rl.brier(q, y, labels)), _num(rl.nll(q, y, labels)), cf])  # fmt: skip
            hit = (np.array(top) == np.array(y)).astype(float)
            plot.setdefault((model, method), []).append(np.column_stack([q.max(axis=1), hit]))
    return out, {k: np.vstack(v) for k, v in plot.items()}


CALIBRATION_HEADER = [
    "model", "condition", "seed", "calibration", "n", "uar", "ece", "brier", "nll", "content_free",
]  # fmt: skip


def read_content_free(folder: Path, labels: Sequence[str]) -> dict[tuple[str, str], np.ndarray]:
    """(model, condition) → content-free distribution, from content_free.csv ({} when absent)."""
    path = folder / CONTENT_FREE_CSV
    if not path.is_file():
        return {}
    header, rows, _ = read_complete_rows(path, None)
    out = {}
    for r in rows:
        cell = dict(zip(header, r))
        out[(cell["model"], cell["condition"])] = np.array(
            [float(cell.get(f"p_{lab}") or math.nan) for lab in labels]
        )
    return out


def reliability_figure(path: Path, arrays: dict[tuple[str, str], np.ndarray]) -> Path:
    """One panel per model: accuracy against confidence in 15 bins, one line per calibration."""
    from cuelab.core.reports.plots import _figure

    models = list(dict.fromkeys(m for m, _ in arrays))
    fig = _figure(3.4 * max(1, len(models)) + 0.4, 3.4)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(models)), squeeze=False)).ravel()
    edges = np.linspace(0, 1, rl.ECE_BINS + 1)
    for ax, model in zip(axes, models):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for (m, method), data in arrays.items():
            if m != model:
                continue
            conf, hit = data[:, 0], data[:, 1]
            bins = np.clip(np.ceil(conf * rl.ECE_BINS).astype(int) - 1, 0, rl.ECE_BINS - 1)
            xs = [conf[bins == b].mean() for b in range(rl.ECE_BINS) if (bins == b).any()]
            ys = [hit[bins == b].mean() for b in range(rl.ECE_BINS) if (bins == b).any()]
            ax.plot(xs, ys, marker="o", label=method)
        ax.set_xticks(edges[::3])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("top-label probability")
        ax.set_ylabel("accuracy")
        ax.set_title(model, fontsize=8)
        ax.legend(fontsize=7)
    fig.savefig(path)
    return path


def write_reliance_and_calibration(
    folder: Path,
    record: rec.RunRecord,
    groups: dict[Key, Group],
    keys: Sequence[Key],
    labels: Sequence[str],
    models: Sequence[str],
    calibrate: Sequence[str],
    plots: bool,
) -> list[Path]:
    """Write reliance.csv, reliance_index.csv, calibration.csv (and reliability.png)."""
    config = record.config
    n, seed = int(config["bootstrap"]), int(config["bootstrap_seed"])
    probs = load_probabilities(folder, record, labels)
    files = [
        write_csv(folder / RELIANCE_CSV, RELIANCE_HEADER,
                  reliance_rows(groups, keys, probs, labels)),
        write_csv(folder / RELIANCE_INDEX_CSV, RELIANCE_INDEX_HEADER,
                  reliance_index_rows(groups, models, n, seed)),
    ]  # fmt: skip
    methods = [m for m in ("batch", "contextual") if m in calibrate]
    cf = read_content_free(folder, labels) if "contextual" in methods else None
    rows, arrays = calibration_rows(groups, keys, probs, labels, methods, cf)
    files.append(write_csv(folder / CALIBRATION_CSV, CALIBRATION_HEADER, rows))
    if plots and arrays:
        files.append(reliability_figure(folder / "reliability.png", arrays))
    return files
