"""Tables in the papers' shape, built from a run's long-form CSVs, in CSV, Markdown and LaTeX.

``cuelab report RUN --tables`` (and every eval) writes ``tables/``:

* ``emotion.{csv,md,tex}`` (the emotion paper's Tables II/III): one row per
  model; UAR audio-only [CI], UAR +tokens (``correct``) [CI], Δ [CI], McNemar
  p (audio-only vs correct), then per intervention (conflict, shuffle, the
  strongest ``corrupt:P``) its UAR (mean over seeds) and Holm-corrected p
  against correct and against audio-only, in the run's families;
* ``sseu.{csv,md,tex}`` (the SSEU paper's Tables 1/2): one row per model ×
  mode; WER / mACC / mAP per SNR, ``Average`` (over every SNR where the metric
  is defined) and ``Mean5`` (over the finite SNR levels), as mean ± std over
  seeds when sampled;
* ``token_distribution.png``: per concept, stacked bars of its levels per
  emotion (the emotion paper's Figure 1).

The CSV copies the long-form cells unchanged (one column per number); the
Markdown and LaTeX versions show them formatted (UAR and Δ in percent, one
decimal; p to three significant digits). LaTeX uses booktabs rules
(pandas' Styler).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cuelab.core.reports.analysis import POOLED_SEED, perturbed_conditions
from cuelab.core.reports.stats import AUDIO_ONLY, CORRECT, MEAN_SEED
from cuelab.core.runs import record as rec
from cuelab.core.runs.csvio import atomic_write_text, read_complete_rows, write_csv
from cuelab.core.runs.folder import RunFolder

TABLES_DIR = "tables"


def _read(path: Path) -> list[dict[str, str]]:
    header, rows, _ = read_complete_rows(path, None)
    return [dict(zip(header, r)) for r in rows]


def percent(cell: str) -> str:
    """A 0–1 cell as a percentage with one decimal ("" stays "")."""
    return "" if cell == "" else f"{100.0 * float(cell):.1f}"


def pvalue(cell: str) -> str:
    """A p-value cell to three significant digits ("" stays "")."""
    return "" if cell == "" else f"{float(cell):.3g}"


def with_ci(point: str, low: str, high: str) -> str:
    """``62.5 [50.0, 75.0]`` from three 0–1 cells (the interval left out when empty)."""
    if point == "":
        return ""
    if low == "" or high == "":
        return percent(point)
    return f"{percent(point)} [{percent(low)}, {percent(high)}]"


def _seed_row(
    summary: dict[tuple[str, str, str], dict[str, str]], model: str, cond: str
) -> dict[str, str]:
    """The condition's row: seed-free, else its seed mean, else its only seed."""
    for seed in ("", MEAN_SEED):
        if (model, cond, seed) in summary:
            return summary[(model, cond, seed)]
    seeded = [r for (m, c, _), r in summary.items() if (m, c) == (model, cond)]
    return seeded[0] if len(seeded) == 1 else {}


def _test_row(
    tests: dict[tuple[str, str, str, str], dict[str, str]], model: str, a: str, b: str
) -> dict[str, str]:
    return tests.get((model, a, b, "")) or tests.get((model, a, b, POOLED_SEED)) or {}


def emotion_table(
    folder: Path, record: rec.RunRecord
) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """(CSV header, CSV rows, display header, display rows) of the emotion table."""
    summary = {(r["model"], r["condition"], r["seed"]): r for r in _read(folder / "summary.csv")}
    tests = {
        (r["model"], r["condition_a"], r["condition_b"], r["seed"]): r
        for r in _read(folder / "tests.csv")
    }
    conditions = list(record.config["conditions"])
    perturbed = perturbed_conditions(conditions)
    interventions = [c for c in conditions if c in perturbed]
    header = [
        "model", "audio_only_uar", "audio_only_ci_low", "audio_only_ci_high", "tokens_uar",
        "tokens_ci_low", "tokens_ci_high", "delta_uar", "delta_ci_low", "delta_ci_high",
        "p_mcnemar",
    ]  # fmt: skip
    shown = ["Model", "Audio-only UAR [CI]", "+Tokens UAR [CI]", "Δ [CI]", "McNemar p"]
    for c in interventions:
        header += [f"{c}_uar", f"{c}_p_holm_vs_correct", f"{c}_p_holm_vs_audio_only"]
        shown += [f"{c} UAR", f"{c} p vs correct (Holm)", f"{c} p vs audio-only (Holm)"]
    rows, display = [], []
    for model in record.config["models"]:
        audio = _seed_row(summary, model, AUDIO_ONLY)
        tokens = _seed_row(summary, model, CORRECT)
        if not audio and not tokens:
            continue
        test = _test_row(tests, model, AUDIO_ONLY, CORRECT)
        cells = [model, *(audio.get(k, "") for k in ("uar", "uar_ci_low", "uar_ci_high")),
                 *(tokens.get(k, "") for k in ("uar", "uar_ci_low", "uar_ci_high")),
                 *(tokens.get(k, "") for k in ("delta_uar", "delta_ci_low", "delta_ci_high")),
                 test.get("p_mcnemar", "")]  # fmt: skip
        for c in interventions:
            cells += [
                _seed_row(summary, model, c).get("uar", ""),
                _test_row(tests, model, CORRECT, c).get("p_holm", ""),
                _test_row(tests, model, AUDIO_ONLY, c).get("p_holm", ""),
            ]
        rows.append(cells)
        show = [model, with_ci(*cells[1:4]), with_ci(*cells[4:7]), with_ci(*cells[7:10]),
                pvalue(cells[10])]  # fmt: skip
        for k in range(len(interventions)):
            u, pc, pa = cells[11 + 3 * k : 14 + 3 * k]
            show += [percent(u), pvalue(pc), pvalue(pa)]
        display.append(show)
    return header, rows, shown, display


def _snr_key(snr: str) -> float:
    try:
        return float(snr)
    except ValueError:
        return -math.inf


SSEU_METRICS = (("wer", "WER"), ("macc", "mACC"), ("map", "mAP"))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else format(x, ".6g")


def sseu_table(folder: Path) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """(CSV header, CSV rows, display header, display rows) of the SSEU table."""
    summary = _read(folder / "summary.csv")
    snrs = sorted({r["snr_db"] for r in summary}, key=_snr_key)
    finite = [s for s in snrs if math.isfinite(_snr_key(s))]
    keys = list(dict.fromkeys((r["model"], r["mode"]) for r in summary))
    by = {(r["model"], r["mode"], r["snr_db"]): r for r in summary}
    header, shown = ["model", "mode"], ["Model", "Mode"]
    for m, name in SSEU_METRICS:
        for s in snrs:
            header += [f"{m}@{s}", f"{m}_std@{s}"]
            shown.append(f"{name} {s} dB")
        header += [f"{m}_average", f"{m}_mean5"]
        shown += [f"{name} Average", f"{name} Mean{len(finite)}"]
    rows, display = [], []
    for model, mode in keys:
        cells, show = [model, mode], [model, mode]
        for m, _ in SSEU_METRICS:
            values: dict[str, float] = {}
            for s in snrs:
                r = by.get((model, mode, s), {})
                v, sd = r.get(m, ""), r.get(f"{m}_std", "")
                cells += [v, sd]
                show.append(
                    "" if v == "" else f"{float(v):.1f}" + (f" ± {float(sd):.1f}" if sd else "")
                )
                if v != "":
                    values[s] = float(v)
            avg = _mean(list(values.values()))
            mean5 = _mean([values[s] for s in finite if s in values])
            cells += [_fmt(avg), _fmt(mean5)]
            show += ["" if not math.isfinite(x) else f"{x:.1f}" for x in (avg, mean5)]
        rows.append(cells)
        display.append(show)
    return header, rows, shown, display


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table (pipes in cells escaped)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    out = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n"


def latex(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> str:
    """A booktabs LaTeX table through pandas' Styler (cells escaped)."""
    import pandas as pd

    frame = pd.DataFrame([list(r) for r in rows], columns=list(header))
    styler = (
        frame.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    )
    text = styler.to_latex(hrules=True, caption=caption, column_format="l" * len(header))
    # pdflatex has no glyph for a raw Δ ("Unicode character not set up"): math mode does
    return text.replace("Δ", "$\\Delta$").replace("±", "$\\pm$")


def _write_all(out: Path, name: str, table: tuple[Any, Any, Any, Any], caption: str) -> list[Path]:
    header, rows, shown, display = table
    out.mkdir(exist_ok=True)
    files = [write_csv(out / f"{name}.csv", header, rows)]
    for ext, text in (("md", markdown(shown, display)), ("tex", latex(shown, display, caption))):
        path = out / f"{name}.{ext}"
        atomic_write_text(path, text)
        files.append(path)
    return files


def write_emotion_tables(folder: Path, record: rec.RunRecord, *, plots: bool = True) -> list[Path]:
    """Write tables/emotion.{csv,md,tex} (and token_distribution.png) of an emotion run."""
    out = folder / TABLES_DIR
    choices = record.analysis
    holm = choices.get("holm") if isinstance(choices, dict) else None
    rule = (
        "Holm over all of a model's per-seed tests (pooled seeds: none)"
        if holm == "all"
        else "Holm within the paper's families"
    )
    caption = f"UAR (\\%) with speaker-bootstrap 95\\% CI; p: exact McNemar, {rule}"
    files = _write_all(out, "emotion", emotion_table(folder, record), caption)
    if plots:
        path = token_distribution_figure(folder, record, out / "token_distribution.png")
        if path is not None:
            files.append(path)
    return files


def write_sseu_tables(folder: Path) -> list[Path]:
    """Write tables/sseu.{csv,md,tex} of an SSEU run."""
    caption = "WER / mACC / mAP (\\%) per SNR; mean $\\pm$ std over seeds when sampled"
    return _write_all(folder / TABLES_DIR, "sseu", sseu_table(folder), caption)


def token_counts(folder: Path, record: rec.RunRecord) -> dict[str, dict[str, dict[str, int]]]:
    """concept → label → level → clips, from the ``correct`` rows' token text (one model)."""
    from cuelab.core.cues.tokens import parse_tokens
    from cuelab.core.errors import CueLabError

    header, rows, _ = read_complete_rows(RunFolder(folder).predictions, rec.row_check(record))
    col = {c: i for i, c in enumerate(header)}
    seen: set[str] = set()
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows:
        if r[col["condition"]] != CORRECT or r[col["utt_id"]] in seen or not r[col["tokens"]]:
            continue
        seen.add(r[col["utt_id"]])
        try:
            tokens = parse_tokens(r[col["tokens"]])
        except CueLabError:
            continue
        for concept in tokens:
            level = out.setdefault(concept, {}).setdefault(r[col["label"]], {})
            level[tokens[concept]] = level.get(tokens[concept], 0) + 1
    return out


def token_distribution_figure(folder: Path, record: rec.RunRecord, path: Path) -> Path | None:
    """Per concept, stacked bars of its levels' shares per emotion (None without tokens)."""
    import numpy as np

    from cuelab.core.cues.tokens import VOCAB
    from cuelab.core.reports.plots import _figure

    counts = token_counts(folder, record)
    if not counts:
        return None
    labels = [lab for lab in record.labels if any(lab in c for c in counts.values())]
    fig = _figure(2.6 * len(counts) + 0.6, 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(counts), squeeze=False)).ravel()
    for ax, (concept, by_label) in zip(axes, counts.items()):
        bottom = np.zeros(len(labels))
        for level in VOCAB[concept]:
            share = np.array([
                by_label.get(lab, {}).get(level, 0) / max(1, sum(by_label.get(lab, {}).values()))
                for lab in labels
            ])  # fmt: skip
            ax.bar(range(len(labels)), share, bottom=bottom, label=level.lower())
            bottom += share
        ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
        ax.set_title(concept.lower(), fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=5)
    fig.savefig(path)
    return path
