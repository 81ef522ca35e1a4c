"""Emotion runs as a task kind: share each clip's prefix, stream its features.

:class:`EmotionKind` runs on :func:`cuelab.core.runs.engine.run_kind`. Per model
and clip it makes one ``score`` call with every distinct token text of that clip
(all condition × seed variants, deduplicated), so an adapter encodes "audio +
instruction" once per clip and scores the variants as suffixes. The engine runs
the models one after the other, each loaded once and unloaded before the next
(two 7B models rarely fit on one GPU), and loads the first while the features
are extracted; with ``stream_features`` (no shuffle condition) the first model
scores each chunk of clips as its features arrive (:mod:`cuelab.core.runs.overlap`).

The engine appends every (clip, model) batch of rows to predictions.csv with
one ``write``, then flushes and fsyncs it. A run killed at any point (even
``kill -9``) therefore leaves complete rows plus at most one torn record;
``resume`` cuts the torn tail, skips the (utt, model, condition, seed) keys
already written and scores the rest, refusing when the configuration
differs. Only token sets and ids stay in memory; audio is read per clip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cuelab.core.cues.extract import FeatureConfig
from cuelab.core.cues.feature_cache import FeatureCache, clip_features
from cuelab.core.cues.tokens import TokenSet
from cuelab.core.cues.workers import choose_workers
from cuelab.core.datasets.annotations import load_all
from cuelab.core.datasets.manifest import Manifest, ManifestRow, read_manifest
from cuelab.core.errors import AudioError, FeatureError, ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip, Prediction
from cuelab.core.models.capabilities import ScoreRequest
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig
from cuelab.core.runs.options import EmotionOptions, option_names
from cuelab.core.runs.overlap import STREAM_CHUNK, FeatureStream, can_stream
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
from cuelab.core.runs.writer import KEY_COLUMNS
from cuelab.core.tasks.kind import Key, KindPlan, Rows
from cuelab.core.threads import apply_threads, choose_threads

if TYPE_CHECKING:
    from cuelab.core.cues.norms import NormsProfile
    from cuelab.core.tasks.prompts import TaskPrompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmotionSetup:
    """What an emotion run (plain or with audio edits) reads before any clip: the
    manifest and its rows, the closed label set, the prompt, the norms, and the
    run's identity and predictions.csv layout."""

    manifest: Manifest
    rows: list[ManifestRow]
    labels: tuple[str, ...]
    task: TaskPrompt
    norms: NormsProfile
    identity: dict[str, Any]
    extras: list[tuple[str, str]]
    header: list[str]


def emotion_setup(config: RunConfig, *, edits: bool = False) -> EmotionSetup:
    """Read and check everything an emotion run needs before its first clip."""
    from cuelab.core.cues.norms import load_norms
    from cuelab.core.tasks.prompts import load_task

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
    extras = rec.extra_columns(manifest.columns, labels, edits=edits)
    header = rec.prediction_header(labels, extras, edits=edits)
    return EmotionSetup(manifest, rows, labels, task, norms, ident, extras, header)


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


#: An item of an emotion run: a clip and the variant plan it is scored with.
Item = tuple[ManifestRow, VariantPlan]


class EmotionKind:
    """The emotion task (closed label set, token conditions) as a task kind of the run engine.

    Progress counts ``features`` then ``scoring`` (one item per clip and model left
    when the run starts). Streamed (``stream_features`` and no shuffle condition),
    it counts ``scoring`` only, with the features' progress as its detail.
    """

    name: str = "emotion"
    report: str = "emotion"
    progress: str = "scoring"
    options: tuple[str, ...] = option_names(EmotionOptions)

    def __init__(
        self, config: RunConfig, cache: FeatureCache | None = None, *, stream_features: bool = False
    ) -> None:
        self.config = config
        # each clip read once in the run
        self.cache = (cache if cache is not None else FeatureCache()).for_run()
        self.out = Path(config.out)
        self.streaming = stream_features and can_stream(config)
        self.variants: VariantPlan | None = None  # the whole run's, once the features are in

    def plan(self) -> KindPlan:
        """Manifest, labels, prompt and norms; the identity and the table layout."""
        config = self.config
        setup = emotion_setup(config)
        self.rows, self.labels, self.task = setup.rows, setup.labels, setup.task
        self.norms, self.extras = setup.norms, setup.extras
        self.mine = [r for r in self.rows if config.shard is None or config.shard.holds(r.utt_id)]
        return KindPlan(
            setup.identity, str(setup.manifest.path), setup.labels, setup.header, KEY_COLUMNS
        )

    def sections(self, earlier: Mapping[str, Any]) -> dict[str, Any]:
        """Nothing before the features: the interventions are recorded once they are in."""
        return {}

    def session(self, session: dict[str, Any]) -> None:
        """Choose and apply the torch threads, counting the streamed features' workers."""
        self.chunk, self.workers = _threads(self.config, self.rows, session, self.streaming)

    def ahead(self, done: set[Key], specs: Sequence[str]) -> str | None:
        """The first model with a clip left (as far as known before the features)."""
        self.done = done  # the rows written: grows as the run writes
        self.left = _todo(self.config, self.mine, done)
        return next((spec for spec in specs if self.left[spec]), None)

    def begin(
        self,
        done: set[Key],
        sections: dict[str, Any],
        control: JobControl,
        failed: Callable[[str, str, str, str, str], None],
    ) -> bool:
        """Every clip's features, then the variant plan; records the interventions."""
        config, rows = self.config, self.rows
        broken: dict[str, str] | None = None if config.fail_fast else {}
        sets = compute_token_sets(rows, self.norms, self.cache, control, config.workers, broken)
        for row in rows:
            if broken and row.utt_id in broken:
                failed(row.utt_id, row.rel_path, "", "features", broken[row.utt_id])
        self.variants = _plan(config, rows, sets, self.out, sections)
        return True

    def stream(
        self,
        spec: str | None,
        done: set[Key],
        sections: dict[str, Any],
        control: JobControl,
        failed: Callable[[str, str, str, str, str], None],
    ) -> _Stream | None:
        """With streaming on, ``spec``'s clips chunk by chunk as their features arrive."""
        if not self.streaming:
            return None
        config = self.config
        features = FeatureStream(self.rows, self.norms, self.cache, control, self.workers,
                                 not config.fail_fast, self.chunk)  # fmt: skip
        return _Stream(self, features, spec, sections, failed)

    def todo(self, done: set[Key], specs: Sequence[str]) -> dict[str, list[Item]]:
        """Per model, the clips with a row left that have features (none before they are in)."""
        plan = self.variants
        if plan is None:  # a stream's start: none is ready, the stream hands its chunks
            return {spec: [] for spec in specs}
        return {spec: [(r, plan) for r in self.left[spec] if r.utt_id in plan.index]
                for spec in specs}  # fmt: skip

    def units(self, todo: Mapping[str, Sequence[Item]]) -> int:
        """One per clip and model left when the run started (a clip without features included)."""
        return sum(len(v) for v in self.left.values())

    def answerer(
        self,
        model: Any,
        spec: str,
        control: JobControl,
        failed: Callable[[str, str, str, str], None],
    ) -> Callable[[Item], tuple[Rows, int]]:
        """Every variant of one clip in one call: the rows not yet written."""
        fail_fast = self.config.fail_fast

        def answer(item: Item) -> tuple[Rows, int]:
            row, plan = item
            try:
                return score_clip(model, spec, row, plan, self.cache, self.task, self.labels,
                                  self.extras, self.done), 1  # fmt: skip
            except (AudioError, FeatureError) as exc:  # this clip, not the run
                if fail_fast:
                    raise
                failed(row.utt_id, row.rel_path, "audio", str(exc))
                return [], 1

        return answer

    def item_name(self, item: Item) -> str:
        """The clip."""
        return item[0].utt_id

    def clips(self) -> int:
        """How many clips this run (or shard) holds."""
        return len(self.mine)

    def notes(self) -> tuple[str, ...]:
        """The plan's notes (e.g. a condition that changed no token)."""
        return () if self.variants is None else tuple(self.variants.notes)


class _Stream:
    """One model's clips in chunks as :class:`FeatureStream` extracts their features.

    Each chunk's plan equals the whole run's for its clips (no shuffle: a clip's
    variants depend on its own tokens only). At the end the whole run's plan is
    built and its interventions recorded, as :meth:`EmotionKind.begin` does.
    """

    def __init__(
        self,
        kind: EmotionKind,
        features: FeatureStream,
        spec: str | None,
        sections: dict[str, Any],
        failed: Callable[[str, str, str, str, str], None],
    ) -> None:
        self.kind, self.features, self.sections, self.failed = kind, features, sections, failed
        self.wanted = {r.utt_id for r in kind.left[spec]} if spec is not None else set()

    def __iter__(self) -> Iterator[list[Item]]:
        config = self.kind.config
        rows: list[ManifestRow] = []
        sets: list[TokenSet | None] = []
        for part, part_sets, broken in self.features:
            for row in part:
                if row.utt_id in broken:
                    self.failed(row.utt_id, row.rel_path, "", "features", broken[row.utt_id])
            rows.extend(part)
            sets.extend(part_sets)
            kept = [(r, t) for r, t in zip(part, part_sets) if t is not None]
            plan = VariantPlan(config, [r.utt_id for r, _ in kept], [t for _, t in kept])
            yield [(r, plan) for r, _ in kept if r.utt_id in self.wanted]
        self.kind.variants = _plan(config, rows, sets, self.kind.out, self.sections)

    @property
    def note(self) -> str:
        """How far the features are, and with how many workers."""
        return self.features.note

    def close(self) -> None:
        """Stop extracting and wait for the thread."""
        self.features.close()


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
    sections: dict[str, Any],
) -> VariantPlan:
    """The run's variant plan over the clips with features; its sections of run.json."""
    kept = [(r, t) for r, t in zip(rows, sets) if t is not None]
    splits = None if config.split is not None else [r.get("split") for r, _ in kept]
    plan = VariantPlan(config, [r.utt_id for r, _ in kept], [t for _, t in kept], splits)
    sections["interventions"] = plan.statistics()
    sections["notes"] = list(plan.notes)
    for note in plan.notes:
        log.warning("%s: %s", out, note)
    return plan


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


def score_clip(
    adapter: Any,
    spec: str,
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
    reads ``done``, and the engine writes the rows in clip order.
    """
    variants = plan.variants(row.utt_id)
    texts = unique_texts(variants)
    clip = _clip(row, cache, adapter.sample_rate)
    preds = adapter.score(ScoreRequest.from_prompt(clip, task, labels, texts))
    if len(preds) != len(texts):
        raise ModelError(f"model {spec} returned {len(preds)} predictions for {len(texts)} prompts")
    by_text = dict(zip(texts, preds))
    scoring = adapter.scoring_method
    return [
        _row_cells(row, spec, v, by_text[v.text], labels, extras, scoring)
        for v in variants
        if (row.utt_id, spec, v.condition, v.seed_text) not in done
    ]
