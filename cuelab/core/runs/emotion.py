"""The emotion engine: stream clips, share each clip's prefix, append, resume.

The loop is model → clip → one ``score_labels`` call with every distinct
token text of that clip (all condition × seed variants, deduplicated), so an
adapter encodes "audio + instruction" once per clip and scores the variants
as suffixes. Models run one after the other, each loaded once and unloaded
before the next: two 7B models rarely fit on one GPU.

Every (clip, model) batch of rows is appended to predictions.csv with one
``write``, then flushed and fsynced. A run killed at any point (even
``kill -9``) therefore leaves complete rows plus at most one torn record;
``resume`` cuts the torn tail, skips the (utt, model, condition, seed) keys
already written and scores the rest, refusing when the configuration
differs. Only token sets and ids stay in memory; audio is read per clip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cuelab.core.audio.io import load_audio
from cuelab.core.cues.features import FeatureCache, FeatureConfig, extract_file
from cuelab.core.datasets.annotations import load_all
from cuelab.core.datasets.manifest import ManifestRow, read_manifest
from cuelab.core.errors import AudioError, FeatureError, ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip, Prediction
from cuelab.core.runs import record as rec
from cuelab.core.runs.base import (
    ClipFailures,
    Key,
    ModelLoader,
    ModelRun,
    PredictionWriter,
    RunOutcome,
    default_loader,
    in_order,
    open_record,
    replaced_note,
    run_session,
)
from cuelab.core.runs.config import RunConfig
from cuelab.core.runs.plan import (
    Variant,
    VariantPlan,
    clip_span,
    compute_token_sets,
    resolve_labels,
    select_rows,
    span_features,
    unique_texts,
)

log = logging.getLogger(__name__)


def _clip(row: ManifestRow, cache: FeatureCache, rate: int = 16000) -> Clip:
    audio, sr = load_audio(row.path, rate)
    if row.start is not None:  # a region row: the model hears only its span
        audio = clip_span(audio, sr, row)
        feats = span_features(row, FeatureConfig())
    else:
        feats = extract_file(row.path, cache=cache)
    return Clip(audio=audio, sr=sr, utt_id=row.utt_id, features=feats, meta=dict(row.fields))


def _row_cells(
    row: ManifestRow,
    spec: str,
    variant: Variant,
    pred: Prediction,
    labels: Sequence[str],
    extras: Sequence[tuple[str, str]],
    scoring: str = "",
) -> list[object]:
    answer = "" if pred.unparsed or pred.label is None else pred.label
    probs = [format(pred.probs[lab], ".6g") if lab in pred.probs else "" for lab in labels]
    return [
        row.utt_id,
        row.get("speaker"),
        row.get("label"),
        spec,
        variant.condition,
        variant.seed_text,
        answer,
        *probs,
        pred.scoring or scoring,
        pred.raw_output or "",
        pred.finish_reason,
        variant.text or "",
        *(row.get(col) for col, _ in extras),
    ]


def run_emotion_eval(
    config: RunConfig,
    *,
    resume: bool = False,
    control: JobControl | None = None,
    command: Sequence[str] | None = None,
    cache: FeatureCache | None = None,
    loader: ModelLoader | None = None,
) -> RunOutcome:
    """Run (or continue) an emotion (closed label set) evaluation into ``config.out``.

    The contract (arguments, progress, cancellation, errors) is
    :func:`cuelab.core.runs.engine.run_eval`'s: progress counts ``features`` then
    ``scoring`` (one item per clip and model).
    """
    from cuelab.core.cues.norms import load_norms
    from cuelab.core.tasks.prompts import load_task

    ctl = control if control is not None else JobControl()
    cache = cache if cache is not None else FeatureCache()
    out = Path(config.out)
    manifest = read_manifest(config.manifest)
    load_all(config.manifest)  # the report reads the sidecars at the end: check them now
    rows = select_rows(manifest, config)
    # the label set is the whole split's: --limit or --shard must not change what is scored
    labels = resolve_labels(manifest.split(config.split), config)
    task = load_task(config.task, labels)
    norms = load_norms(config.norms)
    ident = rec.identity(
        config,
        manifest_sha256=manifest.sha256,
        norms_sha256=norms.sha256,
        prompt_digest=task.digest(),
        labels=labels,
        feature_key=FeatureConfig().key(),
    )
    out.mkdir(parents=True, exist_ok=True)
    record = open_record(out, config, ident, str(manifest.path), labels, resume)
    replaced = replaced_note(record)
    session = rec.start_session(record, command)
    rec.write_record(out, record)
    extras = rec.extra_columns(manifest.columns, labels)
    header = rec.prediction_header(labels, extras)
    check = rec.row_check(record)
    writer = PredictionWriter(out / rec.PREDICTIONS_CSV, header, resume, check=check)
    written = 0
    failures = ClipFailures(out, config.fail_fast)
    with run_session(out, record, session, writer), failures:
        broken: dict[str, str] | None = None if config.fail_fast else {}
        sets = compute_token_sets(rows, norms, cache, ctl, config.workers, broken)
        for row in rows:
            if broken and row.utt_id in broken:
                failures.add(row.utt_id, row.rel_path, "", "features", broken[row.utt_id])
        rows = [r for r, t in zip(rows, sets) if t is not None]
        token_sets = [t for t in sets if t is not None]
        splits = None if config.split is not None else [r.get("split") for r in rows]
        plan = VariantPlan(config, [r.utt_id for r in rows], token_sets, splits)
        record["interventions"] = plan.statistics()
        record["notes"] = list(plan.notes)
        rec.write_record(out, record)
        for note in plan.notes:
            log.warning("%s: %s", out, note)
        mine = [r for r in rows if config.shard is None or config.shard.holds(r.utt_id)]
        todo = _todo(config, plan, mine, writer.done)
        ctl.start(sum(len(v) for v in todo.values()), "scoring")
        for spec in config.models:
            if not todo[spec]:
                continue
            ctx = EmotionModelRun(spec, config, record, out, loader or default_loader)
            try:

                def score(row: ManifestRow, ctx: EmotionModelRun = ctx) -> list[list[object]]:
                    try:
                        return ctx.score(row, plan, cache, task, labels, extras, writer.done)
                    except (AudioError, FeatureError) as exc:  # this clip, not the run
                        if config.fail_fast:
                            raise
                        failures.add(row.utt_id, row.rel_path, ctx.spec, "audio", str(exc))
                        return []

                for row, cells in in_order(score, todo[spec], ctx.adapter.concurrency, ctl):
                    writer.append(cells)
                    written += len(cells)
                    ctl.advance(1, ctx.progress(row.utt_id))
            finally:
                ctx.close()
    log.info("run %s complete: %d rows written, %d kept", out, written, writer.kept)
    notes = (*replaced, *plan.notes)
    return RunOutcome(out, written, writer.kept, len(mine), notes, len(failures.rows))


def _todo(
    config: RunConfig, plan: VariantPlan, mine: Sequence[ManifestRow], done: set[Key]
) -> dict[str, list[ManifestRow]]:
    """Per model, the clips with at least one (condition, seed) row still missing."""
    keys = [(c, "" if s is None else str(s)) for c, s in plan.keys]
    return {
        spec: [r for r in mine if any((r.utt_id, spec, c, s) not in done for c, s in keys)]
        for spec in config.models
    }


class EmotionModelRun(ModelRun):
    """A loaded model that scores every token variant of a clip in one call."""

    def score(
        self,
        row: ManifestRow,
        plan: VariantPlan,
        cache: FeatureCache,
        task: Any,
        labels: Sequence[str],
        extras: Sequence[tuple[str, str]],
        done: set[Key],
    ) -> list[list[object]]:
        """Score every variant of one clip in one call; the rows not yet written.

        Runs on a worker thread when the model keeps several clips in flight; it only
        reads ``done``, and the caller writes the rows in clip order.
        """
        variants = plan.variants(row.utt_id)
        texts = unique_texts(variants)
        clip = _clip(row, cache, self.adapter.sample_rate)
        preds = self.adapter.score_labels(clip, task, labels, texts)
        if len(preds) != len(texts):
            raise ModelError(
                f"model {self.spec} returned {len(preds)} predictions for {len(texts)} prompts"
            )
        by_text = dict(zip(texts, preds))
        scoring = self.adapter.scoring_method
        return [
            _row_cells(row, self.spec, v, by_text[v.text], labels, extras, scoring)
            for v in variants
            if (row.utt_id, self.spec, v.condition, v.seed_text) not in done
        ]
