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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuelab.core.audio.edits import RESYNTH
from cuelab.core.cues.feature_cache import FeatureCache, clip_features
from cuelab.core.datasets.manifest import ManifestRow
from cuelab.core.errors import AudioError, FeatureError, ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip
from cuelab.core.models.capabilities import ScoreRequest
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig
from cuelab.core.runs.edit_audio import EditSetup, prepare_edits, write_edits_csv
from cuelab.core.runs.emotion import _clip, _row_cells, emotion_setup
from cuelab.core.runs.options import EmotionOptions, option_names
from cuelab.core.runs.plan import (
    Variant,
    VariantPlan,
    compute_token_sets,
    unique_texts,
)
from cuelab.core.tasks.kind import Key, KindPlan, Rows

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


class EditKind:
    """The emotion task crossed with audio edits, as a task kind of the run engine.

    Progress counts ``features``, ``edits`` (clips × edits, cached), the edited
    clips' ``features``, then ``scoring`` (one item per clip and model).
    """

    name: str = "emotion-edits"
    report: str = "emotion"
    progress: str = "scoring"
    options: tuple[str, ...] = option_names(EmotionOptions)

    def __init__(self, config: RunConfig, cache: FeatureCache | None = None) -> None:
        self.config = config
        # each clip read once in the run
        self.cache = (cache if cache is not None else FeatureCache()).for_run()
        self.out = Path(config.out)

    def plan(self) -> KindPlan:
        """Manifest, labels, prompt and norms; the identity and the 2×2 table layout."""
        setup = emotion_setup(self.config, edits=True)
        self.manifest, self.rows, self.labels = setup.manifest, setup.rows, setup.labels
        self.task, self.norms, self.extras = setup.task, setup.norms, setup.extras
        return KindPlan(
            setup.identity, str(setup.manifest.path), setup.labels, setup.header, EDIT_KEY_COLUMNS
        )

    def sections(self, earlier: Mapping[str, Any]) -> dict[str, Any]:
        """Nothing before the features: the interventions are recorded by :meth:`begin`."""
        return {}

    def session(self, session: dict[str, Any]) -> None:
        """An edit run records no thread choice."""

    def begin(
        self,
        done: set[Key],
        sections: dict[str, Any],
        control: JobControl,
        failed: Callable[[str, str, str, str, str], None],
    ) -> bool:
        """Features, the edits and their features, the plan; records the interventions."""
        config, cache, ctl = self.config, self.cache, control
        rows = self.rows
        broken: dict[str, str] | None = None if config.fail_fast else {}
        sets = compute_token_sets(rows, self.norms, cache, ctl, config.workers, broken)
        rows = [r for r, t in zip(rows, sets) if t is not None]
        originals = {r.utt_id: t for r, t in zip(rows, [t for t in sets if t is not None])}
        self.setup = setup = prepare_edits(
            rows, config.edits, config.edit_engine, self.norms, cache, ctl, config.workers, broken
        )
        for utt, reason in (broken or {}).items():
            row = next((r for r in self.manifest.rows if r.utt_id == utt), None)
            stage = "edit" if reason.startswith(("edit ", "features of edit")) else "features"
            failed(utt, row.rel_path if row else "", "", stage, reason)
        rows = setup.rows
        self.edit_plan = plan = _plan(config, rows, [originals[r.utt_id] for r in rows], setup)
        sections["interventions"] = plan.original.statistics()
        sections["notes"] = list(plan.original.notes)
        self.mine = [r for r in rows if config.shard is None or config.shard.holds(r.utt_id)]
        write_edits_csv(self.out, setup, {r.utt_id for r in self.mine})
        return True

    def ahead(self, done: set[Key], specs: Sequence[str]) -> str | None:
        """No model loads ahead: each loads when its turn comes."""
        return None

    def stream(self, spec: str | None, done: set[Key], sections: dict[str, Any],
               control: JobControl, failed: Callable[..., None]) -> None:  # fmt: skip
        """No stream: the edits and their features come before any model answers."""
        return None

    def todo(self, done: set[Key], specs: Sequence[str]) -> dict[str, list[ManifestRow]]:
        """Per model, the clips with at least one cell still missing."""
        self.done = done
        return {spec: _missing(self.edit_plan, self.mine, spec, done) for spec in specs}

    def units(self, todo: Mapping[str, Sequence[ManifestRow]]) -> int:
        """One progress item per clip and model."""
        return sum(len(v) for v in todo.values())

    def answerer(
        self,
        model: Any,
        spec: str,
        control: JobControl,
        failed: Callable[[str, str, str, str], None],
    ) -> Callable[[ManifestRow], tuple[Rows, int]]:
        """The rows of one clip not yet written, one model call per distinct audio."""
        config = self.config

        def score(row: ManifestRow) -> tuple[Rows, int]:
            try:
                return score_cells(
                    model, spec, row, self.edit_plan, self.setup, self.cache, self.task,
                    self.labels, self.extras, self.done,
                ), 1  # fmt: skip
            except (AudioError, FeatureError) as exc:
                if config.fail_fast:
                    raise
                failed(row.utt_id, row.rel_path, "audio", str(exc))
                return [], 1

        return score

    def item_name(self, item: ManifestRow) -> str:
        """The clip."""
        return item.utt_id

    def clips(self) -> int:
        """How many clips with features this run (or shard) holds."""
        return len(self.mine)

    def notes(self) -> tuple[str, ...]:
        """The plan's notes (e.g. a condition that changed no token)."""
        return tuple(self.edit_plan.original.notes)


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


def score_cells(
    adapter: Any,
    spec: str,
    row: ManifestRow,
    plan: EditPlan,
    setup: EditSetup,
    cache: FeatureCache,
    task: Any,
    labels: Sequence[str],
    extras: Sequence[tuple[str, str]],
    done: set[Key],
) -> list[list[object]]:
    """The rows of one clip not yet written, in cell order: one call per distinct audio."""
    cells = [c for c in plan.cells(row.utt_id) if c.key(row.utt_id, spec) not in done]
    by_audio: dict[str, list[Cell]] = {}
    for c in cells:
        by_audio.setdefault(c.audio, []).append(c)
    preds: dict[tuple[str, str | None], Any] = {}
    rate = adapter.sample_rate
    for audio, group in by_audio.items():
        if audio == NONE:
            clip = _clip(row, cache, rate)
        else:
            path = setup.clips[audio][row.utt_id].path
            loaded = cache.read(path)  # one read: samples and the features' cache key
            signal, sr = loaded.decode(rate)
            clip = Clip(audio=signal, sr=sr, utt_id=row.utt_id,
                        features=clip_features(loaded, cache=cache), meta=dict(row.fields))  # fmt: skip
        texts = unique_texts([c.variant for c in group])
        got = adapter.score(ScoreRequest.from_prompt(clip, task, labels, texts))
        if len(got) != len(texts):
            raise ModelError(
                f"model {spec} returned {len(got)} predictions for {len(texts)} prompts"
            )
        preds.update({(audio, t): p for t, p in zip(texts, got)})
    scoring = adapter.scoring_method
    at = len(rec.BASE_COLUMNS) + len(labels) + len(rec.TAIL_COLUMNS)
    out = []
    for c in cells:
        pred = preds[(c.audio, c.variant.text)]
        cells_ = _row_cells(row, spec, c.variant, pred, labels, extras, scoring)
        out.append([*cells_[:at], c.edit, c.audio_source, c.token_source, *cells_[at:]])
    return out
