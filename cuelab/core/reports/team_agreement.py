"""Agreement of a manifest's annotators, as the window and ``cuelab annotations agreement`` show it.

The annotators' sidecars (:mod:`cuelab.core.datasets.annotations`) become a
reliability table: one unit per clip (whole-clip labels) and, apart, one unit
per region (a region is the same unit for two annotators when its start and
end agree to the millisecond). Labels compare case-insensitively, as in a
run's report. The figures come from :mod:`cuelab.core.metrics.agreement`:
Krippendorff's alpha (nominal; ordinal too when the labels are the levels of a
concept scale, or an order is given) with a bootstrap CI over units, Cohen's
kappa for every pair, Fleiss' kappa, per-class agreement and, given model
answers, each annotator against the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuelab.core.cues.tokens import VOCAB
from cuelab.core.datasets.annotations import Annotation, Unit, load_all, unit_sort_key
from cuelab.core.datasets.manifest import read_manifest
from cuelab.core.metrics.agreement import (
    alpha_bootstrap_ci,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    per_class_agreement,
)
from cuelab.core.runs import record as rec
from cuelab.core.runs.csvio import read_complete_rows
from cuelab.core.runs.folder import RunFolder


@dataclass
class UnitTable:
    """Units x annotators: ``labels[unit][annotator]`` (absent = no label)."""

    annotators: list[str]
    units: list[Unit]
    labels: dict[Unit, dict[str, str]]

    def rows(self, annotators: Sequence[str] | None = None) -> list[list[str | None]]:
        """The reliability table: one list per unit, one value per annotator (None = missing)."""
        who = list(annotators if annotators is not None else self.annotators)
        return [[self.labels[u].get(a) for a in who] for u in self.units]

    def pairable(self) -> list[Unit]:
        """Units labelled by at least two annotators (the ones alpha counts)."""
        return [u for u in self.units if len(self.labels[u]) >= 2]


@dataclass
class TeamAgreement:
    """Every agreement figure of one manifest (see the module docstring)."""

    annotators: list[str]
    n_units: int
    alpha: float
    alpha_ci_low: float
    alpha_ci_high: float
    alpha_ordinal: float | None
    order: list[str] | None
    n_region_units: int
    alpha_regions: float
    pairwise: list[dict[str, Any]]
    fleiss_kappa: float
    per_class: dict[str, float]
    versus_model: list[dict[str, Any]] = field(default_factory=list)
    clips: UnitTable | None = None
    regions: UnitTable | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object (NaN stays NaN here; the CLI writes it as null)."""
        return {
            "krippendorff_alpha": self.alpha,
            "alpha_ci_low": self.alpha_ci_low,
            "alpha_ci_high": self.alpha_ci_high,
            "krippendorff_alpha_ordinal": self.alpha_ordinal,
            "ordinal_order": self.order,
            "n_units": self.n_units,
            "n_annotators": len(self.annotators),
            "annotators": self.annotators,
            "pairwise_kappa": self.pairwise,
            "fleiss_kappa": self.fleiss_kappa,
            "per_class_agreement": self.per_class,
            "n_region_units": self.n_region_units,
            "krippendorff_alpha_regions": self.alpha_regions,
            "versus_model": self.versus_model,
        }

    def pair_cell(self, a: str, b: str, label_a: str, label_b: str) -> list[Unit]:
        """The clips where annotator ``a`` said ``label_a`` and ``b`` said ``label_b``."""
        table = self.clips
        if table is None:
            return []
        return [
            u
            for u in table.units
            if table.labels[u].get(a) == label_a and table.labels[u].get(b) == label_b
        ]

    def disagreements(self, a: str | None = None, b: str | None = None) -> list[Unit]:
        """Clips where two annotators (all, when not named) gave different labels."""
        table = self.clips
        if table is None:
            return []
        out = []
        for u in table.units:
            got = table.labels[u]
            said = [got[x] for x in (a, b) if x in got] if a and b else list(got.values())
            if len(said) >= 2 and len(set(said)) > 1:
                out.append(u)
        return out

    def with_class(self, label: str) -> list[Unit]:
        """Pairable clips where some annotator said ``label``."""
        table = self.clips
        if table is None:
            return []
        return [u for u in table.pairable() if label in table.labels[u].values()]


def unit_tables(annotations: Mapping[str, Sequence[Annotation]]) -> tuple[UnitTable, UnitTable]:
    """(whole clips, regions) from each annotator's annotations; labels casefolded."""
    who = sorted(annotations)
    clips: dict[Unit, dict[str, str]] = {}
    regions: dict[Unit, dict[str, str]] = {}
    for name in who:
        for a in annotations[name]:
            if not a.label.strip():
                continue
            if a.is_region:
                assert a.start is not None and a.end is not None
                key: Unit = (a.path, round(a.start, 3), round(a.end, 3))
                regions.setdefault(key, {})[name] = a.label.strip().casefold()
            else:
                clips.setdefault(a.unit, {})[name] = a.label.strip().casefold()
    return (
        UnitTable(who, sorted(clips, key=unit_sort_key), clips),
        UnitTable(who, sorted(regions, key=unit_sort_key), regions),
    )


def scale_order(labels: set[str]) -> list[str] | None:
    """The concept scale (lowest first) that holds every label, if one does."""
    for scale in VOCAB.values():
        if len(scale) == 5 and labels and labels <= {s.casefold() for s in scale}:
            return [s.casefold() for s in scale]
    return None


def team_agreement(
    manifest_path: str | Path,
    *,
    predictions: Mapping[str, Mapping[str, str]] | None = None,
    order: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    annotations: Mapping[str, Sequence[Annotation]] | None = None,
) -> TeamAgreement:
    """All figures for the annotators of a manifest.

    Args:
        manifest_path: the manifest; its sidecars are read unless ``annotations`` is given.
        predictions: model -> clip path (as in the manifest) -> answer ("" = unparsed).
        order: the ordinal scale, lowest first (else a concept scale if the labels fit one).
        n_boot: bootstrap resamples for alpha's interval.
        seed: the bootstrap's seed.
        annotations: annotator -> annotations, when already in memory (the window).
    """
    anns = annotations if annotations is not None else load_all(manifest_path)
    clips, regions = unit_tables(anns)
    rows = clips.rows()
    used = {v for r in rows for v in r if v is not None}
    scale = [o.casefold() for o in order] if order else scale_order(used)
    alpha_ord = krippendorff_alpha(rows, "ordinal", scale) if scale is not None and rows else None
    lo, hi = alpha_bootstrap_ci(rows, "nominal", n_boot=n_boot, seed=seed)
    pairwise = []
    for i, a in enumerate(clips.annotators):
        for b in clips.annotators[i + 1 :]:
            col_a = [clips.labels[u].get(a) for u in clips.units]
            col_b = [clips.labels[u].get(b) for u in clips.units]
            kappa, n = cohen_kappa(col_a, col_b)
            agree = sum(1 for x, y in zip(col_a, col_b, strict=True) if x is not None and x == y)
            pairwise.append({"annotator_a": a, "annotator_b": b, "kappa": kappa, "n": n,
                             "agree": agree})  # fmt: skip
    return TeamAgreement(
        annotators=clips.annotators,
        n_units=len(clips.pairable()),
        alpha=krippendorff_alpha(rows),
        alpha_ci_low=lo,
        alpha_ci_high=hi,
        alpha_ordinal=alpha_ord,
        order=scale,
        n_region_units=len(regions.pairable()),
        alpha_regions=krippendorff_alpha(regions.rows()),
        pairwise=pairwise,
        fleiss_kappa=fleiss_kappa(rows),
        per_class={str(k): v for k, v in per_class_agreement(rows).items()},
        versus_model=_versus_model(clips, predictions or {}),
        clips=clips,
        regions=regions,
    )


def _versus_model(
    clips: UnitTable, predictions: Mapping[str, Mapping[str, str]]
) -> list[dict[str, Any]]:
    out = []
    for model in sorted(predictions):
        answers = predictions[model]
        for who in clips.annotators:
            pairs = [
                (clips.labels[u][who], answers[u[0]].strip().casefold())
                for u in clips.units
                if who in clips.labels[u] and u[0] in answers
            ]
            # an unparsed answer ("") is a disagreement, never dropped
            kappa, n = cohen_kappa([p[0] for p in pairs], [p[1] or "\0" for p in pairs])
            agree = sum(1 for x, y in pairs if x == y)
            out.append({"annotator": who, "model": model, "n": n, "agree": agree,
                        "agreement": agree / n if n else math.nan, "kappa": kappa})  # fmt: skip
    return out


def run_predictions(
    run_folder: str | Path, manifest_path: str | Path, condition: str = "audio-only"
) -> dict[str, dict[str, str]]:
    """model -> clip path -> answer for one seed-free condition of a run of this manifest.

    Raises:
        ReportError: no predictions.csv in the folder.
    """
    from cuelab.core.errors import ReportError

    path = RunFolder(run_folder).predictions
    if not path.is_file():
        raise ReportError(f"{run_folder}: no {rec.PREDICTIONS_CSV} (not a run folder)")
    header, rows, _ = read_complete_rows(path)
    missing = [c for c in ("utt_id", "model", "condition", "prediction") if c not in header]
    if missing:
        raise ReportError(f"{path}: no column {missing[0]!r}")
    iu, im, ic, ip = (header.index(c) for c in ("utt_id", "model", "condition", "prediction"))
    by_utt = {r.utt_id: r.rel_path for r in read_manifest(manifest_path, check_files=False).rows}
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        if r[ic] == condition and r[iu] in by_utt:
            out.setdefault(r[im], {})[by_utt[r[iu]]] = r[ip]
    return out
