"""``channels.csv``: the audio channel against the token channel, per model, edit and condition.

For each edit E (from an edit run, :mod:`cuelab.core.runs.edit_run`) the four
cells of the 2×2 are scored:

``original``  original audio + original tokens
``audio``     E's audio + the original tokens (the audio channel alone)
``tokens``    resynthesised audio + E's tokens (the token channel alone)
``both``      E's audio + E's tokens

Each cell carries UAR with its speaker-clustered bootstrap CI, the **swap
rate** against the resynth control (the share of clips whose predicted label
differs from the control's; an unparsed answer counts as its own label), and
the mean **Jensen–Shannon distance** (base 2, so in [0, 1]) between the cell's
label distribution and the control's, over clips where both have
probabilities. The control is resynthesis through the same engine, never the
original file: resynthesis alone moves features. It is resynth audio with the
original tokens for cells whose tokens are the original's, and resynth audio
with resynth's own tokens for cells with edited tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cuelab.core.errors import ReportError
from cuelab.core.reports import stats
from cuelab.core.runs import record as rec
from cuelab.core.runs.csvio import read_complete_rows, write_csv
from cuelab.core.runs.folder import RunFolder

CHANNELS_CSV = "channels.csv"
RESYNTH = "resynth"
#: cell name -> (audio_source, token_source); the ``original`` cell is the edit ``none`` rows.
CELLS = {
    "original": ("original", "original"),
    "audio": ("edited", "original"),
    "tokens": ("resynth", "edited"),
    "both": ("edited", "edited"),
}
COLUMNS = [
    "model", "edit", "condition", "seed", "cell", "audio_source", "token_source", "n", "uar",
    "uar_ci_low", "uar_ci_high", "n_speakers", "ci_note", "swap_rate", "js_mean", "n_compared",
]  # fmt: skip


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) between two label distributions (renormalised)."""
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def _num(x: float) -> str:
    return "" if x is None or not math.isfinite(x) else format(float(x), ".6g")


Item = tuple[str, str, str, np.ndarray | None]  # label, speaker, prediction, probs


def _load(
    folder: Path, record: rec.RunRecord
) -> tuple[dict[tuple[str, ...], dict[str, Item]], list[str]]:
    path = RunFolder(folder).predictions
    if not path.is_file():
        raise ReportError(f"{folder}: no {rec.PREDICTIONS_CSV}")
    header, rows, _ = read_complete_rows(path, rec.row_check(record))
    missing = [c for c in (*rec.BASE_COLUMNS, *rec.EDIT_COLUMNS) if c not in header]
    if missing:
        raise ReportError(f"{path}: not an edit run (missing {', '.join(missing)})")
    labels = list(record.labels)
    col = {c: header.index(c) for c in (*rec.BASE_COLUMNS, *rec.EDIT_COLUMNS)}
    pcols = [header.index(f"p_{lab}") if f"p_{lab}" in header else -1 for lab in labels]
    cells: dict[tuple[str, ...], dict[str, Item]] = {}
    for r in rows:
        if not r[col["label"]]:
            continue
        key = tuple(r[col[c]] for c in ("model", "edit", "condition", "seed", "audio_source",
                                        "token_source"))  # fmt: skip
        probs: np.ndarray | None = None
        if all(i >= 0 and r[i] != "" for i in pcols):
            probs = np.array([float(r[i]) for i in pcols])
            if not probs.sum() > 0:
                probs = None
        cells.setdefault(key, {})[r[col["utt_id"]]] = (
            r[col["label"]], r[col["speaker"]], r[col["prediction"]], probs,
        )  # fmt: skip
    return cells, labels


def compare(cell: dict[str, Item], control: dict[str, Item]) -> tuple[float, float, int]:
    """(swap rate, mean JS distance, clips compared) of a cell against its control."""
    shared = sorted(set(cell) & set(control))
    if not shared:
        return math.nan, math.nan, 0
    swaps = sum(cell[u][2] != control[u][2] for u in shared)
    js = []
    for u in shared:
        p, q = cell[u][3], control[u][3]
        if p is not None and q is not None:
            js.append(js_distance(p, q))
    return swaps / len(shared), float(np.mean(js)) if js else math.nan, len(shared)


def channel_rows(folder: Path, record: rec.RunRecord) -> list[list[object]]:
    """The rows of channels.csv (see the module docstring)."""
    cells, labels = _load(folder, record)
    config = record.config
    n_boot, boot_seed = int(config["bootstrap"]), int(config["bootstrap_seed"])
    models = list(config["models"])
    edits = list(config.get("edits") or [])
    conditions = list(config["conditions"])
    seeds = sorted({k[3] for k in cells}, key=lambda s: (s != "", int(s) if s else 0))
    out: list[list[object]] = []
    for model in models:
        for edit in edits:
            for condition in conditions:
                for seed in seeds:
                    controls = {
                        ts: cells.get((model, RESYNTH, condition, seed, "edited", ts), {})
                        for ts in ("original", "edited")
                    }
                    for name, (audio, tokens) in CELLS.items():
                        key = (model, "none" if name == "original" else edit, condition, seed,
                               audio, tokens)  # fmt: skip
                        if edit == RESYNTH and name == "tokens":
                            continue  # resynth's token cell is its own "both"
                        items = cells.get(key)
                        if not items:
                            continue
                        out.append(_row(model, edit, condition, seed, name, items,
                                        controls[tokens], labels, n_boot, boot_seed))  # fmt: skip
    return out


def _row(
    model: str, edit: str, condition: str, seed: str, name: str, items: dict[str, Item],
    control: dict[str, Item], labels: Sequence[str], n_boot: int, boot_seed: int,
) -> list[object]:  # fmt: skip
    group = stats.Group(model, condition, seed)
    group.items = {u: (lab, pred or None, spk) for u, (lab, spk, pred, _) in items.items()}
    scored = stats.score_group(group, labels, n_boot, boot_seed)
    swap, js, n_cmp = compare(items, control)
    audio, tokens = CELLS[name]
    return [model, edit, condition, seed, name, audio, tokens, scored.n, _num(scored.uar),
            _num(scored.uar_ci_low), _num(scored.uar_ci_high), scored.n_speakers,
            scored.ci_note, _num(swap), _num(js), n_cmp]  # fmt: skip


def write_channels(folder: Path, record: rec.RunRecord, *, plots: bool = True) -> Path:
    """Write channels.csv (and channels.png) for an edit run folder."""
    rows = channel_rows(folder, record)
    path = write_csv(folder / CHANNELS_CSV, COLUMNS, rows)
    if plots and rows:
        channels_figure(folder / "channels.png", rows)
    return path


def channels_figure(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """UAR of the four cells per edit (first model, first condition with tokens, first seed)."""
    from cuelab.core.reports.plots import _figure

    first = next((r for r in rows if r[2] != "audio-only"), rows[0])
    mine = [r for r in rows if r[0] == first[0] and r[2] == first[2] and r[3] == first[3]]
    edits = list(dict.fromkeys(str(r[1]) for r in mine))
    fig = _figure(1.6 + 1.2 * len(edits), 3.2)
    ax = fig.add_subplot()
    width = 0.2
    for k, name in enumerate(CELLS):
        xs, ys = [], []
        for i, edit in enumerate(edits):
            hit = [r for r in mine if r[1] == edit and r[4] == name]
            if hit and hit[0][8] != "":
                xs.append(i + (k - 1.5) * width)
                ys.append(float(str(hit[0][8])))
        ax.bar(xs, ys, width, label=name)
    ax.set_xticks(range(len(edits)), edits, rotation=20, fontsize=8)
    ax.set_ylabel("UAR")
    ax.set_ylim(0, 1.18)
    ax.set_title(f"{first[0]} · {first[2]}: audio vs token channel", fontsize=9)
    ax.legend(fontsize=7, ncols=4, loc="upper center")
    fig.savefig(path)
    return path
