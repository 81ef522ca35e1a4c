"""Score parsed SSEU answers: WER, mACC and mAP in percent, mean ± std over seeds.

References come from a built set's manifest (:func:`reference_from_row`);
predictions are :class:`~cuelab.core.tasks.sseu.answers.ParsedAnswer` objects.
Conventions (see :mod:`cuelab.core.metrics` for the metrics themselves):

* WER is corpus WER over clips whose reference has words (``-inf`` clips,
  background only, have none and are left out). An unparsed transcript
  counts as empty: every reference word is a deletion.
* mACC is over clips with a reference scene (``+inf`` clips, speech only,
  have none). An unparsed or unmatched scene answer is wrong.
* mAP is over all clips, from per-event confidences (a clip without events
  is a negative for every class); events without a positive clip are left
  out of the macro average. An unparsed events answer gives zero confidence
  to every class.
* A metric is computed only when some record's task asked for its field.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from cuelab.core.metrics import (
    UNPARSED,
    MetricsError,
    aggregate_seeds,
    macc,
    mean_average_precision,
    normalise_text,
    wer_counts,
    wer_from_counts,
)
from cuelab.core.tasks.sseu.answers import FIELDS, ParsedAnswer
from cuelab.core.tasks.sseu.matching import LexicalMatcher, Matcher
from cuelab.core.tasks.sseu.prompts import display_label

#: ``wer`` is scored after Whisper's English normaliser; ``wer_raw`` on the texts as written.
METRICS = ("wer", "wer_raw", "macc", "map")


@dataclass(frozen=True)
class SseuReference:
    """Ground truth of one mixture (empty transcript/scene: no speech/background)."""

    transcript: str
    scene: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class SseuRecord:
    """One clip's reference and parsed prediction, under one sampling seed."""

    reference: SseuReference
    prediction: ParsedAnswer
    seed: int = 0


def reference_from_row(fields: Mapping[str, str]) -> SseuReference:
    """Reference from a manifest row's fields (``transcript``, ``scene``, ``events``)."""
    events = tuple(e.strip() for e in str(fields.get("events", "") or "").split(";") if e.strip())
    return SseuReference(
        str(fields.get("transcript", "") or ""), str(fields.get("scene", "") or ""), events
    )


def oracle_answer(reference: SseuReference, asked: Sequence[str] = FIELDS) -> ParsedAnswer:
    """The answer a perfect model would give: the upper bound of the scoring."""
    return ParsedAnswer(
        tuple(asked),
        transcript=reference.transcript,
        scene=reference.scene,
        events=reference.events,
        source="oracle",
    )


def manifest_answer(meta: Mapping[str, str], asked: Sequence[str]) -> ParsedAnswer:
    """The oracle's SSEU answer, read from a manifest row (transcript, scene, events).

    Scene and event classes are given as words (``car_passing`` → "car passing"),
    the way the prompts show them, so the answer still goes through the run's
    matcher. A clip without speech answers an empty transcript, one without
    background no scene and no events: answers, not parse failures.
    """
    answer = oracle_answer(reference_from_row(meta), asked)
    return replace(
        answer,
        scene=display_label(answer.scene or ""),
        events=tuple(display_label(e) for e in answer.events or ()),
    )


def _asked(records: Sequence[SseuRecord], field: str) -> bool:
    return any(field in r.prediction.asked for r in records)


def _wer(records: Sequence[SseuRecord], *, normalise: bool = True) -> tuple[float, int]:
    rows = [r for r in records if normalise_text(r.reference.transcript)]
    if not rows:
        return math.nan, 0
    hyps = [r.prediction.transcript for r in rows]
    errors, words = wer_counts([r.reference.transcript for r in rows], hyps, normalise=normalise)
    return 100.0 * wer_from_counts(errors, words), len(rows)


def _macc(records: Sequence[SseuRecord], matcher: Matcher) -> tuple[float, int, int]:
    rows = [r for r in records if r.reference.scene]
    if not rows:
        return math.nan, 0, 0
    preds, unmatched = [], 0
    for r in rows:
        text = r.prediction.scene
        label = matcher.match(text).label if text is not None else None
        unmatched += text is not None and label is None
        preds.append(label if label is not None else UNPARSED)
    return 100.0 * macc([r.reference.scene for r in rows], preds), len(rows), unmatched


def _map(records: Sequence[SseuRecord], matcher: Matcher) -> float:
    classes = list(matcher.classes)
    index = {c: j for j, c in enumerate(classes)}
    y_true = np.zeros((len(records), len(classes)), dtype=int)
    y_score = np.zeros((len(records), len(classes)))
    for i, r in enumerate(records):
        for event in r.reference.events:
            if event not in index:
                raise MetricsError(f"reference event {event!r} is not in the event classes")
            y_true[i, index[event]] = 1
        if r.prediction.events:
            conf = matcher.confidences(r.prediction.events)
            y_score[i] = [conf[c] for c in classes]
    if not y_true.any():
        return math.nan
    return 100.0 * mean_average_precision(y_true, y_score)


def _score_group(
    records: Sequence[SseuRecord], scene_matcher: Matcher, event_matcher: Matcher
) -> dict[str, float]:
    out: dict[str, float] = {"n": float(len(records))}
    if _asked(records, "transcript"):
        out["wer"], n_wer = _wer(records)
        out["wer_raw"], _ = _wer(records, normalise=False)
        out["n_wer"] = float(n_wer)
    if _asked(records, "scene"):
        out["macc"], n_scene, unmatched = _macc(records, scene_matcher)
        out["n_scene"], out["unmatched_scene"] = float(n_scene), float(unmatched)
    if _asked(records, "events"):
        out["map"] = _map(records, event_matcher)
    for field in FIELDS:
        if _asked(records, field):
            out[f"unparsed_{field}"] = float(
                sum(field in r.prediction.unparsed_fields for r in records)
            )
    return out


def score_sseu(
    records: Sequence[SseuRecord],
    scenes: Sequence[str],
    events: Sequence[str],
    *,
    scene_matcher: Matcher | None = None,
    event_matcher: Matcher | None = None,
) -> dict[str, object]:
    """WER, mACC and mAP in percent, per seed and as mean ± std over seeds.

    Args:
        records: one per clip and seed.
        scenes: the scene classes (used by the default lexical matcher).
        events: the event classes (rows of the mAP matrix).
        scene_matcher: maps scene text to a class (default: :class:`LexicalMatcher`).
        event_matcher: gives per-event confidences (default: :class:`LexicalMatcher`).

    Returns:
        ``{"wer", "wer_std", "wer_raw", "wer_raw_std", "macc", "macc_std", "map",
        "map_std", "n", "n_seeds",
        "unparsed_<field>", "unmatched_scene", "per_seed": {seed: {...}}}``; a
        metric no task asked for is absent, one with no scorable clip is NaN,
        and a std over a single seed is NaN. Counts are summed over seeds.

    Raises:
        MetricsError: no records, or a reference event outside ``events``.
    """
    if not records:
        raise MetricsError("no SSEU records to score")
    scene_matcher = scene_matcher or LexicalMatcher(scenes)
    event_matcher = event_matcher or LexicalMatcher(events)
    groups: dict[int, list[SseuRecord]] = defaultdict(list)
    for r in records:
        groups[r.seed].append(r)
    per_seed = {s: _score_group(g, scene_matcher, event_matcher) for s, g in sorted(groups.items())}
    result: dict[str, object] = {"n": len(records), "n_seeds": len(per_seed)}
    first = next(iter(per_seed.values()))
    for metric in METRICS:
        if metric not in first:
            continue
        values = [g[metric] for g in per_seed.values()]
        if any(math.isnan(v) for v in values):
            result[metric], result[f"{metric}_std"] = math.nan, math.nan
            continue
        agg = aggregate_seeds(values)
        result[metric], result[f"{metric}_std"] = agg.mean, agg.std
    for key in first:
        if key.startswith(("unparsed_", "unmatched_")):
            result[key] = int(sum(g.get(key, 0.0) for g in per_seed.values()))
    result["per_seed"] = per_seed
    return result
