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

from cuelab.core.cues.extract import FeatureConfig
from cuelab.core.cues.feature_cache import FeatureCache, clip_features
from cuelab.core.cues.tokens import TokenSet
from cuelab.core.cues.workers import choose_workers
from cuelab.core.datasets.annotations import load_all
from cuelab.core.datasets.manifest import ManifestRow, read_manifest
from cuelab.core.errors import AudioError, FeatureError, ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip, ModelAdapter, Prediction
from cuelab.core.models.capabilities import ScoreRequest
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig
from cuelab.core.runs.folder import RunFolder, RunOutcome, replaced_note
from cuelab.core.runs.model_run import ModelLoader, ModelRun, default_loader
from cuelab.core.runs.ordering import in_order
from cuelab.core.runs.overlap import STREAM_CHUNK, FeatureStream, ModelPreload, can_stream
from cuelab.core.runs.plan import (
    FEATURE_CHUNK,
    Variant,
    VariantPlan,
    clip_span,
    compute_token_sets,
    resolve_labels,
    select_rows,
    span_features,
    unique_texts,
)
from cuelab.core.runs.writer import ClipFailures, Key, PredictionWriter
from cuelab.core.threads import apply_threads, choose_threads

log = logging.getLogger(__name__)


def _clip(row: ManifestRow, cache: FeatureCache, rate: int = 16000) -> Clip:
    loaded = cache.read(row.path)  # one read: the model's samples and the features' cache key
    audio, sr = loaded.decode(rate)
    if row.start is not None:  # a region row: the model hears only its span
        audio = clip_span(audio, sr, row)
        feats = span_features(row, FeatureConfig(), loaded)
    else:
        feats = clip_features(loaded, cache=cache)
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
    stream_features: bool = False,
) -> RunOutcome:
    """Run (or continue) an emotion (closed label set) evaluation into ``config.out``.

    The contract (arguments, progress, cancellation, errors) is
    :func:`cuelab.core.runs.engine.run_eval`'s: progress counts ``features`` then
    ``scoring`` (one item per clip and model). The first model loads while features
    are extracted. With ``stream_features`` a run without shuffle conditions scores
    clips while the next ones' features are extracted (:mod:`cuelab.core.runs.overlap`);
    progress then counts ``scoring`` only, with the features' progress as its detail.
    """
    from cuelab.core.cues.norms import load_norms
    from cuelab.core.tasks.prompts import load_task

    ctl = control if control is not None else JobControl()
    cache = (cache if cache is not None else FeatureCache()).for_run()  # each clip read once
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
    folder = RunFolder(out)
    record = folder.open_record(config, ident, str(manifest.path), labels, resume)
    replaced = replaced_note(record)
    session = rec.start_session(record, command)
    streaming = stream_features and can_stream(config)
    chunk, stream_workers = _threads(config, rows, session, streaming)
    folder.write_record(record)
    extras = rec.extra_columns(manifest.columns, labels)
    header = rec.prediction_header(labels, extras)
    check = rec.row_check(record)
    writer = folder.open_writer(header, resume, check=check)
    failures = folder.failures(config.fail_fast)
    mine = [r for r in rows if config.shard is None or config.shard.holds(r.utt_id)]
    todo = _todo(config, mine, writer.done)
    first = next((spec for spec in config.models if todo[spec]), None)
    with folder.session(record, session, writer), failures:
        # the first model loads while the features start
        options = config.load_options()
        preload = ModelPreload(first, options, loader or default_loader) if first else None
        stream = None
        try:
            if streaming:
                stream = FeatureStream(rows, norms, cache, ctl, stream_workers,
                                       not config.fail_fast, chunk)  # fmt: skip
                run = _Scoring(config, record, out, loader, writer, failures, ctl, extras)
                plan = run.streamed(stream, preload, todo, task, labels, cache)
            else:
                broken: dict[str, str] | None = None if config.fail_fast else {}
                sets = compute_token_sets(rows, norms, cache, ctl, config.workers, broken)
                for row in rows:
                    if broken and row.utt_id in broken:
                        failures.add(row.utt_id, row.rel_path, "", "features", broken[row.utt_id])
                plan = _plan(config, rows, sets, out, record)
                run = _Scoring(config, record, out, loader, writer, failures, ctl, extras)
                ctl.start(sum(len(v) for v in todo.values()), "scoring")
            for spec in config.models:
                rows_left = [r for r in todo[spec] if r.utt_id in plan.index]
                if not rows_left or spec in run.scored:
                    continue
                adapter = preload.take() if preload is not None and spec == preload.spec else None
                run.model(spec, adapter, plan, rows_left, task, labels, cache)
        finally:
            if stream is not None:
                stream.close()
            if preload is not None:
                preload.discard()
        written = run.written
    log.info("run %s complete: %d rows written, %d kept", out, written, writer.kept)
    notes = (*replaced, *plan.notes)
    return RunOutcome(out, written, writer.kept, len(mine), notes, len(failures.rows))


def _threads(
    config: RunConfig, rows: Sequence[ManifestRow], session: dict[str, Any], streaming: bool
) -> tuple[int, int | None]:
    """Choose and apply the torch threads; the streamed chunk size and its workers.

    When features stream they run while the model scores, so their workers count
    against the cores torch may use (:func:`cuelab.core.threads.choose_threads`).
    """
    workers = config.workers
    if streaming and workers is None:
        workers = choose_workers([r.path for r in rows]).workers
    concurrent = (workers or 1) if streaming else 0
    choice = choose_threads(config.threads, feature_workers=concurrent)
    apply_threads(choice)
    session["threads"] = choice.to_dict()
    if not streaming:
        return FEATURE_CHUNK, config.workers
    if workers == 1:
        return STREAM_CHUNK, 1
    return FEATURE_CHUNK, config.workers  # a pool per chunk pays only on big chunks


def _plan(
    config: RunConfig,
    rows: Sequence[ManifestRow],
    sets: Sequence[TokenSet | None],
    out: Path,
    record: rec.RunRecord,
) -> VariantPlan:
    """The run's variant plan over the clips with features; recorded in run.json."""
    kept = [(r, t) for r, t in zip(rows, sets) if t is not None]
    splits = None if config.split is not None else [r.get("split") for r, _ in kept]
    plan = VariantPlan(config, [r.utt_id for r, _ in kept], [t for _, t in kept], splits)
    record.interventions = plan.statistics()
    record.notes = list(plan.notes)
    rec.write_record(out, record)
    for note in plan.notes:
        log.warning("%s: %s", out, note)
    return plan


class _Scoring:
    """Scores clips model by model and appends their rows in manifest order."""

    def __init__(
        self,
        config: RunConfig,
        record: rec.RunRecord,
        out: Path,
        loader: ModelLoader | None,
        writer: PredictionWriter,
        failures: ClipFailures,
        ctl: JobControl,
        extras: Sequence[tuple[str, str]],
    ) -> None:
        self.config, self.record, self.out = config, record, out
        self.loader = loader or default_loader
        self.writer, self.failures, self.ctl, self.extras = writer, failures, ctl, extras
        self.written = 0
        self.scored: set[str] = set()

    def _open(self, spec: str, adapter: ModelAdapter | None) -> EmotionModelRun:
        return EmotionModelRun(spec, self.config, self.record, self.out, self.loader, adapter)

    def _score(
        self,
        ctx: EmotionModelRun,
        plan: VariantPlan,
        rows: Sequence[ManifestRow],
        task: Any,
        labels: Sequence[str],
        cache: FeatureCache,
        note: Any = None,
    ) -> None:
        def score(row: ManifestRow) -> list[list[object]]:
            try:
                return ctx.score(row, plan, cache, task, labels, self.extras, self.writer.done)
            except (AudioError, FeatureError) as exc:  # this clip, not the run
                if self.config.fail_fast:
                    raise
                self.failures.add(row.utt_id, row.rel_path, ctx.spec, "audio", str(exc))
                return []

        for row, cells in in_order(score, rows, ctx.adapter.concurrency, self.ctl):
            self.writer.append(cells)
            self.written += len(cells)
            message = ctx.progress(row.utt_id)
            self.ctl.advance(1, message, "" if note is None else note())

    def model(
        self,
        spec: str,
        adapter: ModelAdapter | None,
        plan: VariantPlan,
        rows: Sequence[ManifestRow],
        task: Any,
        labels: Sequence[str],
        cache: FeatureCache,
    ) -> None:
        """Load (or take) one model and score ``rows`` with it."""
        ctx = self._open(spec, adapter)
        try:
            self._score(ctx, plan, rows, task, labels, cache)
        finally:
            ctx.close()
        self.scored.add(spec)

    def streamed(
        self,
        stream: FeatureStream,
        preload: ModelPreload | None,
        todo: dict[str, list[ManifestRow]],
        task: Any,
        labels: Sequence[str],
        cache: FeatureCache,
    ) -> VariantPlan:
        """Score the first model's clips chunk by chunk as their features arrive.

        Each chunk's plan equals the whole run's for its clips (no shuffle: a clip's
        variants depend on its own tokens only). Returns the whole run's plan.
        """
        self.ctl.start(sum(len(v) for v in todo.values()), "scoring")
        ctx = self._open(preload.spec, preload.take()) if preload is not None else None
        wanted = {r.utt_id for r in todo[ctx.spec]} if ctx is not None else set()
        rows: list[ManifestRow] = []
        sets: list[TokenSet | None] = []
        try:
            for part, part_sets, broken in stream:
                for row in part:
                    if row.utt_id in broken:
                        msg = broken[row.utt_id]
                        self.failures.add(row.utt_id, row.rel_path, "", "features", msg)
                rows.extend(part)
                sets.extend(part_sets)
                if ctx is None:
                    continue
                kept = [(r, t) for r, t in zip(part, part_sets) if t is not None]
                chunk_plan = VariantPlan(
                    self.config, [r.utt_id for r, _ in kept], [t for _, t in kept]
                )
                mine = [r for r, _ in kept if r.utt_id in wanted]
                self._score(ctx, chunk_plan, mine, task, labels, cache, lambda: stream.note)
        finally:
            if ctx is not None:
                ctx.close()
        if ctx is not None:
            self.scored.add(ctx.spec)
        return _plan(self.config, rows, sets, self.out, self.record)


def _todo(
    config: RunConfig, mine: Sequence[ManifestRow], done: set[Key]
) -> dict[str, list[ManifestRow]]:
    """Per model, the clips with at least one (condition, seed) row still missing."""
    keys = [(c, "" if s is None else str(s)) for c in config.conditions
            for s in config.seeds_for(c)]  # fmt: skip
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
        preds = self.adapter.score(ScoreRequest.from_prompt(clip, task, labels, texts))
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
