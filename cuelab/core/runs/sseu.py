"""Execute a speech / scene / event (SSEU) run: free answers, parsed and matched per clip.

An SSEU run asks each model, per clip, in up to three *modes*: ``independent``
(one prompt per task among ASR, ASC and AT, answers merged), ``joint`` (one
prompt for all three) and ``cot`` (the joint answer after reasoning steps).
Answers are parsed (:mod:`cuelab.core.tasks.sseu.answers`); an answer that cannot be
parsed is flagged in the ``unparsed`` column and scored as wrong, never
guessed. Scene and event texts are then mapped to classes by the run's
matcher (lexical by default, or sentence embeddings), and the chosen scene
and the per-class confidences are written next to the text, so the report
needs neither the model nor the matcher. Two families answer without text:
the oracle (the manifest's truth, the upper bound) and CLAP (zero-shot
scene softmax and event sigmoids, mode ``zero-shot``, no ASR).

Generation is greedy by default (``do_sample=False``), so a clip's answer
does not depend on the seed: each (clip, mode) is answered once and written
once per configured seed, and the std over seeds is 0. With ``sample`` every
seed draws its own answer (temperature, top-p), so the std over seeds is the
spread of the draws; each generation is seeded from the run seed, the clip
and the prompt (:func:`draw_seed`), so a draw is reproducible, resumable and
independent of the order of work. run.json records the decoding in the
run's identity. The oracle and CLAP answer without drawing: one answer per
(clip, mode) still serves every seed.

Rows are keyed by (utt_id, model, mode, seed) and appended per clip, in
manifest order, through the shared durable writer, so cancel, ``kill -9``,
``--resume``, ``--shard`` and ``cuelab merge`` behave as for emotion runs. A
remote model answers several clips at once (:func:`~cuelab.core.runs.ordering.in_order`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuelab.core.audio.io import ClipReader
from cuelab.core.datasets.manifest import Manifest, ManifestRow, read_manifest
from cuelab.core.errors import AudioError, ManifestError, ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.metrics.text import NORMALISER as WER_NORMALISER
from cuelab.core.models.base import Clip
from cuelab.core.models.capabilities import scores_similarity
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError

# The SER engine's writer, model context and record helpers are shared, not copied.
from cuelab.core.runs.folder import RunFolder
from cuelab.core.runs.options import SseuOptions, option_names
from cuelab.core.runs.plan import select_rows
from cuelab.core.tasks.kind import Key, KindPlan, Rows
from cuelab.core.tasks.prompts import TaskPrompt
from cuelab.core.tasks.sseu.answering import (
    ZERO_SHOT,
    Answerer,
    ModeResult,
    draw_seed,
    draws,
    fields_of,
    mode_tasks,
    run_tasks,
)
from cuelab.core.tasks.sseu.matchers import build_matchers, early_matchers
from cuelab.core.tasks.sseu.prompts import PROMPT_PROVENANCE, zero_shot_tasks
from cuelab.core.tasks.sseu.remote_embeddings import CACHE_FILE

__all__ = [
    "BASE_COLUMNS",
    "EVENT_PREFIX",
    "KEY_COLUMNS",
    "MODES",
    "RAW_COLUMNS",
    "REFERENCE_COLUMNS",
    "SCENE_PREFIX",
    "ZERO_SHOT",
    "Answerer",
    "ModeResult",
    "SseuKind",
    "SseuSetup",
    "build_matchers",
    "class_lists",
    "draw_seed",
    "draws",
    "fields_of",
    "mode_tasks",
    "model_modes",
    "prepare",
    "row_cells",
    "sseu_header",
    "sseu_identity",
]
from cuelab.core.threads import apply_threads, choose_threads

log = logging.getLogger(__name__)

MODES = ("independent", "joint", "cot", ZERO_SHOT)
KEY_COLUMNS = ("utt_id", "model", "mode", "seed")
BASE_COLUMNS = (
    "utt_id", "speaker", "model", "mode", "tasks", "seed", "snr_db",
    "pred_transcript", "pred_scene", "pred_scene_text", "pred_events", "unparsed",
)  # fmt: skip
RAW_COLUMNS = ("raw_output", "raw_asr", "raw_asc", "raw_at", "finish_reason", "gen_tokens")
REFERENCE_COLUMNS = ("transcript", "scene", "events")
_NOT_CARRIED = {"path", "utt_id", "speaker", "snr_db", *REFERENCE_COLUMNS}
SCENE_PREFIX = "p_scene_"
EVENT_PREFIX = "p_event_"
OPEN_LEXICAL_NOTE = (
    "open answers were mapped lexically: an answer that names no class scores zero; map them "
    "with --matcher openai-embeddings:URL#MODEL or embeddings:FOLDER, as SSEU-Bench does"
)
GREEDY_NOTE = "answers are greedy, so every seed repeats the same answer (std 0)"
SAMPLED_NOTE = (
    "every seed draws its own answer; each generation is seeded with "
    "sha256(seed, utt_id, task) (draw_seed), so std over seeds is the spread of the draws"
)


def sseu_header(
    scenes: Sequence[str], events: Sequence[str], extras: Sequence[tuple[str, str]]
) -> list[str]:
    """The header of an SSEU predictions.csv."""
    return [
        *BASE_COLUMNS,
        *(SCENE_PREFIX + s for s in scenes),
        *(EVENT_PREFIX + e for e in events),
        *RAW_COLUMNS,
        *REFERENCE_COLUMNS,
        *(name for _, name in extras),
    ]


def class_lists(manifest: Manifest) -> tuple[list[str], list[str]]:
    """Scene and event classes: the built set's ``classes.json``, else the manifest's values."""
    from cuelab.core.tasks.sseu.build import read_classes

    if (manifest.path.parent / "classes.json").is_file():
        return read_classes(manifest.path.parent)
    scenes = sorted({r.get("scene") for r in manifest if r.get("scene")})
    events = sorted({e for r in manifest for e in r.events})
    return scenes, events


def _check_references(
    manifest: Manifest,
    rows: Sequence[ManifestRow],
    asked: Sequence[str],
    scenes: Sequence[str],
    events: Sequence[str],
) -> None:
    """Every reference the run scores must exist and be one of the offered classes."""
    columns = {"transcript": "transcript", "scene": "scene", "events": "events"}
    for f in asked:
        if columns[f] not in manifest.columns:
            raise ManifestError(
                f"{manifest.path}: no '{columns[f]}' column, which scoring the {f} needs"
            )
    for r in rows:
        where = f"{manifest.path.name} row {r.index}"
        if "scene" in asked and r.get("scene") and r.get("scene") not in scenes:
            raise ManifestError(f"{where}, column 'scene': '{r.get('scene')}' is not in {scenes}")
        bad = [e for e in r.events if e not in events] if "events" in asked else []
        if bad:
            raise ManifestError(f"{where}, column 'events': '{bad[0]}' is not in {events}")


@dataclass(frozen=True)
class SseuSetup:
    """What stays fixed for a run: classes, prompts, columns, matcher provenance."""

    scenes: tuple[str, ...]
    events: tuple[str, ...]
    prompts: dict[str, TaskPrompt]
    extras: list[tuple[str, str]]
    asked: tuple[str, ...]
    matcher_digest: str | None

    @property
    def header(self) -> list[str]:
        """The predictions.csv header."""
        return sseu_header(self.scenes, self.events, self.extras)

    def prompt_digest(self) -> str:
        """One hash over the templates of every task the run asks."""
        text = "\n".join(f"{t}:{p.digest()}" for t, p in sorted(self.prompts.items()))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare(config: RunConfig, manifest: Manifest, rows: Sequence[ManifestRow]) -> SseuSetup:
    """Classes, prompts and columns of a run, with the references checked up front."""
    from cuelab.core.tasks.sseu.prompts import load_sseu_tasks

    scenes, events = class_lists(manifest)
    tasks = run_tasks(config)
    asked = fields_of(tasks)
    _check_references(manifest, rows, asked, scenes, events)
    prompts = load_sseu_tasks(tasks, scenes, events, answers=config.answers)
    taken = set(sseu_header(scenes, events, []))
    digest = None
    if config.matcher.startswith("embeddings:"):
        from cuelab.core.models.loading import folder_digest

        folder = Path(config.matcher.split(":", 1)[1])
        if not folder.is_dir():
            raise ModelError(f"matcher folder {folder} does not exist")
        digest = folder_digest(folder)
    return SseuSetup(
        tuple(scenes),
        tuple(events),
        prompts,
        rec.carry_columns(manifest.columns, taken, _NOT_CARRIED),
        asked,
        digest,
    )


def sseu_identity(config: RunConfig, manifest: Manifest, setup: SseuSetup) -> dict[str, Any]:
    """Everything that decides an SSEU run's rows, as a flat dict (compared on resume/merge)."""
    return {
        "kind": "sseu",
        "manifest_sha256": manifest.sha256,
        "split": config.split,
        "limit": config.limit,
        "models": list(config.models),
        "sseu_tasks": list(config.sseu_tasks),
        "modes": list(config.sseu_modes),
        "seeds": list(config.seeds),
        "scenes": list(setup.scenes),
        "events": list(setup.events),
        "prompt_digest": setup.prompt_digest(),
        "matcher": config.matcher,
        "matcher_digest": setup.matcher_digest,
        "max_new_tokens": config.max_new_tokens,
        "cot_max_new_tokens": config.cot_max_new_tokens,
        **config.decoding(),
        "quant": config.quant,
        "device": config.device,
        "shard": str(config.shard) if config.shard else None,
    }


# ----------------------------------------------------------------------------- answering


def model_modes(spec: str, config: RunConfig) -> tuple[str, ...]:
    """The modes a model runs: audio–text similarity (CLAP) only ``zero-shot``."""
    from cuelab.core.models.registry import get_adapter_class, parse_spec

    if not scores_similarity(get_adapter_class(parse_spec(spec)[0])):
        return config.sseu_modes
    if not zero_shot_tasks(fields_of(run_tasks(config))):
        raise RunConfigError(f"model {spec} answers only scenes and events; ask asc, at or joint")
    return (ZERO_SHOT,)


def _num(x: float) -> str:
    return format(float(x), ".8g")


def row_cells(
    row: ManifestRow,
    spec: str,
    mode: str,
    seed: int,
    result: ModeResult,
    setup: SseuSetup,
) -> list[object]:
    """One predictions.csv row."""
    a = result.answer
    transcript = a.transcript if "transcript" in a.asked else None
    scene_text = a.scene if "scene" in a.asked else None
    events_text = ";".join(a.events) if "events" in a.asked and a.events else ""
    raw = result.raw
    return [
        row.utt_id,
        row.get("speaker"),
        spec,
        mode,
        ";".join(result.tasks),
        seed,
        row.get("snr_db"),
        transcript or "",
        result.scene or "",
        scene_text or "",
        events_text,
        ";".join(a.unparsed_fields),
        *(_num(result.scene_probs[s]) if s in result.scene_probs else "" for s in setup.scenes),
        *(_num(result.event_probs[e]) if e in result.event_probs else "" for e in setup.events),
        raw.get("joint") or raw.get("cot") or "",
        raw.get("asr", ""),
        raw.get("asc", ""),
        raw.get("at", ""),
        result.finish_reason(),
        "" if result.generated_tokens() is None else result.generated_tokens(),
        *(row.get(c) for c in REFERENCE_COLUMNS),
        *(row.get(c) for c, _ in setup.extras),
    ]


def _clip(row: ManifestRow, rate: int, reader: ClipReader) -> Clip:
    audio, sr = reader.read(row.path).decode(rate)  # read once per run, not per model
    return Clip(audio=audio, sr=sr, utt_id=row.utt_id, meta=dict(row.fields))


TodoItem = tuple[ManifestRow, list[tuple[str, list[str]]]]
Todo = dict[str, list[TodoItem]]


def _todo(
    config: RunConfig,
    modes_of: dict[str, tuple[str, ...]],
    mine: Sequence[ManifestRow],
    done: set[tuple[str, ...]],
) -> Todo:
    """Per model, each clip with its unfinished modes and the seeds each still misses."""
    seeds = [str(s) for s in config.seeds]
    out: Todo = {}
    for spec in config.models:
        items = []
        for r in mine:
            missing = [
                (m, [s for s in seeds if (r.utt_id, spec, m, s) not in done])
                for m in modes_of[spec]
            ]
            missing = [(m, left) for m, left in missing if left]
            if missing:
                items.append((r, missing))
        out[spec] = items
    return out


def _work(config: RunConfig, todo: Todo) -> int:
    """Progress items: one per answer generated (per seed where answers are drawn)."""
    from cuelab.core.models.registry import get_adapter_class, parse_spec

    total = 0
    for spec, items in todo.items():
        cls = get_adapter_class(parse_spec(spec)[0])
        for _, modes in items:
            total += sum(len(left) if draws(cls, m, config) else 1 for m, left in modes)
    return total


def _answer_mode(
    answerer: Answerer,
    setup: SseuSetup,
    ctl: JobControl,
    row: ManifestRow,
    clip: Clip,
    spec: str,
    mode: str,
    seeds: Sequence[str],
) -> tuple[list[list[object]], int]:
    """Answer one clip in one mode for the seeds it misses: (rows, progress units).

    A drawn answer is generated per seed (one unit each); any other answer once
    (one unit), then written for every seed.
    """
    if draws(answerer.adapter, mode, answerer.config):
        cells = []
        for s in seeds:
            result = answerer.answer(clip, mode, ctl, int(s))
            cells.append(row_cells(row, spec, mode, int(s), result, setup))
        return cells, len(seeds)
    result = answerer.answer(clip, mode, ctl)
    return [row_cells(row, spec, mode, int(s), result, setup) for s in seeds], 1


class SseuKind:
    """The SSEU task kind: free answers to ASR / ASC / AT prompts, one row per mode and seed.

    The run engine (:func:`cuelab.core.runs.engine.run_kind`) owns the folder, the
    record, the writer and the model loop; this class is what only an SSEU run
    knows: its classes and prompts, its matchers, and how a clip is answered.
    Progress counts one item per clip × model × mode (× seed where answers are
    drawn).
    """

    name: str = "sseu"
    report: str = "sseu"
    progress: str = "answering"
    options: tuple[str, ...] = option_names(SseuOptions)

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.early: Any = None
        self.matchers: tuple[Any, Any] = (None, None)
        self.reader = ClipReader()  # each clip file read once, whichever models hear it

    def plan(self) -> KindPlan:
        """Classes, prompts and columns; a fresh run's embedding matchers are met here."""
        config = self.config
        manifest = read_manifest(config.manifest)
        rows = select_rows(manifest, config)
        self.setup = setup = prepare(config, manifest, rows)
        self.modes_of = {spec: model_modes(spec, config) for spec in config.models}
        ident = sseu_identity(config, manifest, setup)
        fresh = not RunFolder(self.out).has_record()
        self.early = early_matchers(config, setup, fresh)  # before the folder exists
        self.mine = [r for r in rows if config.shard is None or config.shard.holds(r.utt_id)]
        return KindPlan(ident, str(manifest.path), [], setup.header, KEY_COLUMNS)

    def sections(self, earlier: Mapping[str, Any]) -> dict[str, Any]:
        """The ``sseu`` section of run.json: classes, modes, decoding, prompts, matcher."""
        config, setup = self.config, self.setup
        old = earlier.get("sseu")
        old = old if isinstance(old, dict) else {}
        section = {
            "scenes": list(setup.scenes),
            "events": list(setup.events),
            "modes": list(config.sseu_modes),
            **config.decoding(),
            "seeds_note": SAMPLED_NOTE if config.sample else GREEDY_NOTE,
            "wer_normaliser": WER_NORMALISER,
            "wer_raw": "texts as written, split on white space",
            "answers": config.answers,
            "prompt_texts": PROMPT_PROVENANCE,
        }
        if "matcher_provenance" in old:  # a resume with nothing left builds no matcher
            section["matcher_provenance"] = old["matcher_provenance"]
        return {"sseu": section}

    def session(self, session: dict[str, Any]) -> None:
        """Choose and apply the torch threads (no feature workers run beside SSEU models)."""
        threads = choose_threads(self.config.threads)
        apply_threads(threads)
        session["threads"] = threads.to_dict()

    def ahead(self, done: set[Key], specs: Sequence[str]) -> str | None:
        """No model loads ahead: each loads when its turn comes."""
        return None

    def stream(self, spec: str | None, done: set[Key], sections: dict[str, Any],
               control: JobControl, failed: Callable[..., None]) -> None:  # fmt: skip
        """No stream: the matchers are built before any model answers."""
        return None

    def todo(self, done: set[Key], specs: Sequence[str]) -> Todo:
        """Per model, each clip with its unfinished modes and the seeds each still misses."""
        return _todo(self.config, self.modes_of, self.mine, done)

    def units(self, todo: Mapping[str, Sequence[TodoItem]]) -> int:
        """Progress items: one per answer generated (per seed where answers are drawn)."""
        return _work(self.config, dict(todo))  # type: ignore[arg-type]

    def begin(
        self,
        done: set[Key],
        sections: dict[str, Any],
        control: JobControl,
        failed: Callable[[str, str, str, str, str], None],
    ) -> bool:
        """Build the matchers (or adopt the early ones); True when their provenance is new."""
        if self.early is not None:  # met before the folder existed; its cache now lives there
            self.matchers, cache, provenance = self.early
            if cache is not None:
                cache.attach(self.out / CACHE_FILE)
            sections["sseu"].update(provenance)
        elif any(self.todo(done, self.config.models).values()):
            self.matchers = build_matchers(self.config, self.setup, self.out, sections["sseu"])
        return "matcher_provenance" in sections["sseu"]

    def answerer(
        self,
        model: Any,
        spec: str,
        control: JobControl,
        failed: Callable[[str, str, str, str], None],
    ) -> Callable[[TodoItem], tuple[Rows, int]]:
        """How one clip is answered in its unfinished modes by ``model``."""
        config, setup = self.config, self.setup
        answerer = Answerer(model, config.sseu, setup, self.matchers)

        def answer(item: TodoItem) -> tuple[Rows, int]:
            row, modes = item
            try:
                clip = _clip(row, answerer.adapter.sample_rate, self.reader)
            except AudioError as exc:  # this clip, not the run
                if config.fail_fast:
                    raise
                failed(row.utt_id, row.rel_path, "audio", str(exc))
                drawn = [len(left) if draws(answerer.adapter, m, config) else 1
                         for m, left in modes]  # fmt: skip
                return [], sum(drawn)
            cells: Rows = []
            units = 0
            for mode, left in modes:
                more, n = _answer_mode(answerer, setup, control, row, clip, spec, mode, left)
                cells += more
                units += n
            return cells, units

        return answer

    def item_name(self, item: TodoItem) -> str:
        """The clip an item is about."""
        return item[0].utt_id

    def clips(self) -> int:
        """How many clips this run (or shard) holds."""
        return len(self.mine)

    def notes(self) -> tuple[str, ...]:
        """Open answers mapped lexically score zero where they name no class: say so."""
        config = self.config
        return (
            (OPEN_LEXICAL_NOTE,) if config.answers == "open" and config.matcher == "lexical" else ()
        )
