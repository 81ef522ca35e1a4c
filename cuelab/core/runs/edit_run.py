"""The emotion engine crossed with audio edits: the audio channel against the token channel.

For every clip, model, condition and seed, an edit run writes the cells of the 2×2
per edit E (and for the ``resynth`` control itself), each row marked with
``edit``, ``audio_source`` and ``token_source``:

==========================  ========  ============  ============
cell                        edit      audio_source  token_source
==========================  ========  ============  ============
original audio + tokens     none      original      original
edited audio, original tok. E         edited        original
resynth audio, edited tok.  E         resynth       edited
edited audio + tokens       E         edited        edited
==========================  ========  ============  ============

The ``resynth`` rows (``edit=resynth``, audio ``edited``, tokens ``original`` and
``edited``) are the controls the channels report compares against. Conditions
act on whichever token set the row uses: ``shuffle`` reassigns the edited
tokens across clips, ``conflict`` inverts the edited tokens, and so on.

Each distinct audio of a clip (original, resynth, E) is one ``score_labels``
call with every token text it needs. Rows are keyed by (clip, model,
condition, seed, edit, audio_source, token_source), so ``--resume`` after a
``kill -9`` is exact, and shards merge as in any run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuelab.core.audio.edits import RESYNTH
from cuelab.core.audio.io import load_audio
from cuelab.core.cues.features import FeatureCache, FeatureConfig, extract_file
from cuelab.core.datasets.annotations import load_annotations
from cuelab.core.datasets.manifest import ManifestRow, read_manifest
from cuelab.core.errors import AudioError, FeatureError, ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig
from cuelab.core.runs.edit_audio import EditSetup, prepare_edits, write_edits_csv
from cuelab.core.runs.emotion import _clip, _row_cells
from cuelab.core.runs.folder import RunFolder, RunOutcome
from cuelab.core.runs.model_run import ModelLoader, ModelRun, default_loader
from cuelab.core.runs.ordering import in_order
from cuelab.core.runs.plan import (
    Variant,
    VariantPlan,
    compute_token_sets,
    resolve_labels,
    select_rows,
    unique_texts,
)
from cuelab.core.runs.writer import Key

log = logging.getLogger(__name__)
NONE = "none"
EDIT_KEY_COLUMNS = ("utt_id", "model", "condition", "seed", *rec.EDIT_COLUMNS)


@dataclass(frozen=True)
class Cell:
    """One row of a clip: the audio heard (``none`` = the original file) and its variant."""

    audio: str
    variant: Variant
    edit: str
    audio_source: str
    token_source: str

    def key(self, utt_id: str, spec: str) -> Key:
        v = self.variant
        return (utt_id, spec, v.condition, v.seed_text, self.edit, self.audio_source,
                self.token_source)  # fmt: skip


class EditPlan:
    """Every cell of every clip: the original plan and one plan per edit's token sets."""

    def __init__(self, original: VariantPlan, by_edit: dict[str, VariantPlan]) -> None:
        self.original = original
        self.by_edit = by_edit
        self.keys = original.keys

    def cells(self, utt_id: str) -> list[Cell]:
        orig = self.original.variants(utt_id)
        out = [Cell(NONE, v, NONE, "original", "original") for v in orig]
        for edit, plan in self.by_edit.items():
            mine = plan.variants(utt_id)
            out += [Cell(edit, v, edit, "edited", "original") for v in orig]
            out += [Cell(edit, v, edit, "edited", "edited") for v in mine]
            if edit != RESYNTH:
                out += [Cell(RESYNTH, v, edit, "resynth", "edited") for v in mine]
        return out


def run_edit_eval(
    config: RunConfig,
    *,
    resume: bool = False,
    control: JobControl | None = None,
    command: Sequence[str] | None = None,
    cache: FeatureCache | None = None,
    loader: ModelLoader | None = None,
) -> RunOutcome:
    """Run (or continue) an emotion run with ``config.edits`` (see the module docstring).

    Progress counts ``features``, ``edits`` (clips × edits, cached), the edited
    clips' ``features``, then ``scoring`` (one item per clip and model).
    """
    from cuelab.core.cues.norms import load_norms
    from cuelab.core.tasks.prompts import load_task

    ctl = control if control is not None else JobControl()
    cache = cache if cache is not None else FeatureCache()
    out = Path(config.out)
    manifest = read_manifest(config.manifest)
    load_annotations(config.manifest)
    rows = select_rows(manifest, config)
    labels = resolve_labels(manifest.split(config.split), config)  # whatever --limit keeps
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
    session = rec.start_session(record, command)
    folder.write_record(record)
    extras = rec.extra_columns(manifest.columns, labels, edits=True)
    header = rec.prediction_header(labels, extras, edits=True)
    writer = folder.open_writer(header, resume, EDIT_KEY_COLUMNS, rec.row_check(record))
    written = 0
    failures = folder.failures(config.fail_fast)
    with folder.session(record, session, writer), failures:
        broken: dict[str, str] | None = None if config.fail_fast else {}
        sets = compute_token_sets(rows, norms, cache, ctl, config.workers, broken)
        rows = [r for r, t in zip(rows, sets) if t is not None]
        originals = {r.utt_id: t for r, t in zip(rows, [t for t in sets if t is not None])}
        setup = prepare_edits(
            rows, config.edits, config.edit_engine, norms, cache, ctl, config.workers, broken
        )
        for utt, reason in (broken or {}).items():
            row = next((r for r in manifest.rows if r.utt_id == utt), None)
            stage = "edit" if reason.startswith(("edit ", "features of edit")) else "features"
            failures.add(utt, row.rel_path if row else "", "", stage, reason)
        rows = setup.rows
        plan = _plan(config, rows, [originals[r.utt_id] for r in rows], setup)
        record.interventions = plan.original.statistics()
        record.notes = list(plan.original.notes)
        folder.write_record(record)
        mine = [r for r in rows if config.shard is None or config.shard.holds(r.utt_id)]
        write_edits_csv(out, setup, {r.utt_id for r in mine})
        todo = {spec: _missing(plan, mine, spec, writer.done) for spec in config.models}
        ctl.start(sum(len(v) for v in todo.values()), "scoring")
        for spec in config.models:
            if not todo[spec]:
                continue
            ctx = EditModelRun(spec, config, record, out, loader or default_loader)
            try:

                def score(row: ManifestRow, ctx: EditModelRun = ctx) -> list[list[object]]:
                    try:
                        return ctx.score(row, plan, setup, cache, task, labels, extras,
                                         writer.done)  # fmt: skip
                    except (AudioError, FeatureError) as exc:
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
    log.info("edit run %s complete: %d rows written, %d kept", out, written, writer.kept)
    return RunOutcome(
        out, written, writer.kept, len(mine), tuple(plan.original.notes), len(failures.rows)
    )


def _missing(
    plan: EditPlan, mine: Sequence[ManifestRow], spec: str, done: set[Key]
) -> list[ManifestRow]:
    """The clips with at least one cell still missing for model ``spec``."""
    return [r for r in mine if any(c.key(r.utt_id, spec) not in done for c in plan.cells(r.utt_id))]


def _plan(config: RunConfig, rows: list[ManifestRow], own: list[Any], setup: EditSetup) -> EditPlan:
    ids = [r.utt_id for r in rows]
    splits = None if config.split is not None else [r.get("split") for r in rows]
    original = VariantPlan(config, ids, own, splits)
    by_edit = {e: VariantPlan(config, ids, setup.token_sets[e], splits) for e in config.edits}
    return EditPlan(original, by_edit)


class EditModelRun(ModelRun):
    """A loaded model scoring every cell of a clip: one call per distinct audio."""

    def score(
        self,
        row: ManifestRow,
        plan: EditPlan,
        setup: EditSetup,
        cache: FeatureCache,
        task: Any,
        labels: Sequence[str],
        extras: Sequence[tuple[str, str]],
        done: set[Key],
    ) -> list[list[object]]:
        """The rows of one clip not yet written, in cell order."""
        cells = [c for c in plan.cells(row.utt_id) if c.key(row.utt_id, self.spec) not in done]
        by_audio: dict[str, list[Cell]] = {}
        for c in cells:
            by_audio.setdefault(c.audio, []).append(c)
        preds: dict[tuple[str, str | None], Any] = {}
        rate = self.adapter.sample_rate
        for audio, group in by_audio.items():
            if audio == NONE:
                clip = _clip(row, cache, rate)
            else:
                path = setup.clips[audio][row.utt_id].path
                signal, sr = load_audio(path, rate)
                clip = Clip(audio=signal, sr=sr, utt_id=row.utt_id,
                            features=extract_file(path, cache=cache), meta=dict(row.fields))  # fmt: skip
            texts = unique_texts([c.variant for c in group])
            got = self.adapter.score_labels(clip, task, labels, texts)
            if len(got) != len(texts):
                raise ModelError(
                    f"model {self.spec} returned {len(got)} predictions for {len(texts)} prompts"
                )
            preds.update({(audio, t): p for t, p in zip(texts, got)})
        scoring = self.adapter.scoring_method
        at = len(rec.BASE_COLUMNS) + len(labels) + len(rec.TAIL_COLUMNS)
        out = []
        for c in cells:
            pred = preds[(c.audio, c.variant.text)]
            cells_ = _row_cells(row, self.spec, c.variant, pred, labels, extras, scoring)
            out.append([*cells_[:at], c.edit, c.audio_source, c.token_source, *cells_[at:]])
        return out
