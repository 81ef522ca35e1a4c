"""Execute a batch run: stream clips, share each clip's prefix, append, resume.

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
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cuelab.core.audio import load_audio
from cuelab.core.datasets.manifest import ManifestRow, read_manifest
from cuelab.core.errors import Cancelled, ModelError
from cuelab.core.features import FeatureCache, FeatureConfig, extract_file
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip, LoadOptions, ModelAdapter, Prediction
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.csvio import format_row, read_complete_rows
from cuelab.core.runs.plan import (
    Variant,
    VariantPlan,
    compute_token_sets,
    resolve_labels,
    select_rows,
    unique_texts,
)

log = logging.getLogger(__name__)

Key = tuple[str, str, str, str]  # utt_id, model, condition, seed
KEY_COLUMNS = ("utt_id", "model", "condition", "seed")
ModelLoader = Callable[[str, LoadOptions], ModelAdapter]


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run did."""

    folder: Path
    rows_written: int
    rows_kept: int
    clips: int


class PredictionWriter:
    """Appends rows to predictions.csv durably (one write, flush and fsync per batch).

    The file stays open for the whole run; :meth:`close` is called in the runner's
    ``finally``. ``key_columns`` name the four cells that identify a row (SSEU runs
    key on ``mode`` instead of ``condition``).
    """

    def __init__(
        self,
        path: Path,
        header: list[str],
        resume: bool,
        key_columns: Sequence[str] = KEY_COLUMNS,
    ) -> None:
        self.path = path
        self.done: set[Key] = set()
        self.kept = 0
        if resume and path.exists():
            old_header, rows, good = read_complete_rows(path)
            if old_header and old_header != header:
                raise RunConfigError(
                    f"{path}: columns differ from this configuration's; cannot resume"
                )
            if old_header:
                idx = [header.index(c) for c in key_columns]
                self.done = {(r[idx[0]], r[idx[1]], r[idx[2]], r[idx[3]]) for r in rows}
                self.kept = len(rows)
                with open(path, "r+b") as fh:
                    fh.truncate(good)  # drop a torn last record
                self._fh: IO[str] = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
                return
        self._fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (open for the run)
        self.append([header])

    def append(self, rows: Sequence[Sequence[object]]) -> None:
        """Write ``rows`` as one block and make it durable."""
        self._fh.write("".join(format_row(r) for r in rows))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def _default_loader(spec: str, options: LoadOptions) -> ModelAdapter:
    from cuelab.core.models.registry import load_model

    return load_model(spec, options)


def _clip(row: ManifestRow, cache: FeatureCache) -> Clip:
    audio, sr = load_audio(row.path, 16000)
    feats = extract_file(row.path, cache=cache)
    return Clip(audio=audio, sr=sr, utt_id=row.utt_id, features=feats, meta=dict(row.fields))


def _row_cells(
    row: ManifestRow,
    spec: str,
    variant: Variant,
    pred: Prediction,
    labels: Sequence[str],
    extras: Sequence[tuple[str, str]],
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
        pred.raw_output or "",
        variant.text or "",
        *(row.get(col) for col, _ in extras),
    ]


def _open_record(
    out: Path,
    config: RunConfig,
    ident: dict[str, Any],
    manifest_path: str,
    labels: Sequence[str],
    resume: bool,
) -> dict[str, Any]:
    if (out / rec.RUN_JSON).exists():
        if not resume:
            raise RunConfigError(
                f"{out} already holds a run; add --resume to continue it, or choose another --out"
            )
        record = rec.read_record(out)
        if record.get("merged_from"):
            raise RunConfigError(f"{out} holds merged shards; it cannot be resumed")
        rec.compare_identity(record["identity"], ident, f"cannot resume {out}")
        return record
    if (out / rec.PREDICTIONS_CSV).exists():
        raise RunConfigError(f"{out} has predictions.csv but no run.json; choose another --out")
    return rec.new_record(config, ident, manifest_path, labels)


def run_eval(
    config: RunConfig,
    *,
    resume: bool = False,
    control: JobControl | None = None,
    command: Sequence[str] | None = None,
    cache: FeatureCache | None = None,
    loader: ModelLoader | None = None,
) -> RunOutcome:
    """Run (or continue) a batch evaluation into ``config.out``.

    Args:
        config: the run configuration.
        resume: continue the run already in ``config.out`` (a fresh run when there is none).
        control: progress (``features`` then ``scoring``: one item per clip and model)
            and cancellation; checked between clips.
        command: the command line, recorded in run.json.
        cache: feature cache (default: the user cache).
        loader: model loader (default: the registry), e.g. to reuse a loaded adapter.

    Raises:
        Cancelled: ``control`` was cancelled; everything finished so far is on disk
            and ``resume`` continues it.
        RunConfigError: the folder holds another run, or ``resume`` found a different
            configuration (the message names the key).
    """
    if config.is_sseu:
        from cuelab.core.runs.sseu_engine import run_sseu_eval

        return run_sseu_eval(config, resume=resume, control=control, command=command, loader=loader)
    from cuelab.core.norms import load_norms
    from cuelab.core.prompts import load_task

    ctl = control if control is not None else JobControl()
    cache = cache if cache is not None else FeatureCache()
    out = Path(config.out)
    manifest = read_manifest(config.manifest)
    rows = select_rows(manifest, config)
    labels = resolve_labels(rows, config)
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
    record = _open_record(out, config, ident, str(manifest.path), labels, resume)
    session = rec.start_session(record, command)
    rec.write_record(out, record)
    extras = rec.extra_columns(manifest.columns, labels)
    writer = PredictionWriter(
        out / rec.PREDICTIONS_CSV, rec.prediction_header(labels, extras), resume
    )
    written = 0
    with run_session(out, record, session, writer):
        token_sets = compute_token_sets(rows, norms, cache, ctl, config.workers)
        plan = VariantPlan(config, [r.utt_id for r in rows], token_sets)
        mine = [r for r in rows if config.shard is None or config.shard.holds(r.utt_id)]
        todo = _todo(config, plan, mine, writer.done)
        ctl.start(sum(len(v) for v in todo.values()), "scoring")
        for spec in config.models:
            if not todo[spec]:
                continue
            ctx = _ModelRun(spec, config, record, out, loader or _default_loader)
            try:
                for row in todo[spec]:
                    ctl.check()
                    written += ctx.score(row, plan, cache, task, labels, extras, writer)
                    ctl.advance(1, f"{spec}: {row.utt_id}")
            finally:
                ctx.close()
    log.info("run %s complete: %d rows written, %d kept", out, written, writer.kept)
    return RunOutcome(out, written, writer.kept, len(mine))


def _todo(
    config: RunConfig, plan: VariantPlan, mine: Sequence[ManifestRow], done: set[Key]
) -> dict[str, list[ManifestRow]]:
    """Per model, the clips with at least one (condition, seed) row still missing."""
    keys = [(c, "" if s is None else str(s)) for c, s in plan.keys]
    return {
        spec: [r for r in mine if any((r.utt_id, spec, c, s) not in done for c, s in keys)]
        for spec in config.models
    }


class _ModelRun:
    """One model loaded for the run; its describe() is checked against run.json."""

    def __init__(
        self,
        spec: str,
        config: RunConfig,
        record: dict[str, Any],
        out: Path,
        loader: ModelLoader,
    ) -> None:
        self.spec = spec
        self.adapter = loader(spec, LoadOptions(quant=config.quant, device=config.device))
        described = self.adapter.describe()
        previous = record["models"].get(spec)
        if previous is not None and previous != described:
            changed = sorted(
                k for k in set(previous) | set(described) if previous.get(k) != described.get(k)
            )
            self.adapter.unload()
            raise RunConfigError(
                f"cannot resume {out}: model {spec} differs in '{changed[0]}' from the run's"
            )
        record["models"][spec] = described
        rec.write_record(out, record)

    def score(
        self,
        row: ManifestRow,
        plan: VariantPlan,
        cache: FeatureCache,
        task: Any,
        labels: Sequence[str],
        extras: Sequence[tuple[str, str]],
        writer: PredictionWriter,
    ) -> int:
        """Score every variant of one clip in one call; append the rows not yet written."""
        variants = plan.variants(row.utt_id)
        texts = unique_texts(variants)
        preds = self.adapter.score_labels(_clip(row, cache), task, labels, texts)
        if len(preds) != len(texts):
            raise ModelError(
                f"model {self.spec} returned {len(preds)} predictions for {len(texts)} prompts"
            )
        by_text = dict(zip(texts, preds))
        rows = [
            _row_cells(row, self.spec, v, by_text[v.text], labels, extras)
            for v in variants
            if (row.utt_id, self.spec, v.condition, v.seed_text) not in writer.done
        ]
        writer.append(rows)
        return len(rows)

    def close(self) -> None:
        """Free the model."""
        self.adapter.unload()


@contextmanager
def run_session(
    out: Path, record: dict[str, Any], session: dict[str, Any], writer: PredictionWriter
) -> Iterator[None]:
    """Record how a run ended in run.json (complete, cancelled, interrupted, failed).

    Whatever happens, the prediction writer is closed: rows already written stay.
    """
    try:
        yield
        _finish(out, record, session, "complete")
    except Cancelled:
        _finish(out, record, session, "cancelled")
        raise
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        session["error"] = " ".join(str(exc).split())[:500]
        _finish(out, record, session, status)
        raise
    finally:
        writer.close()


def _finish(out: Path, record: dict[str, Any], session: dict[str, Any], status: str) -> None:
    session["finished"] = rec.now()
    session["status"] = status
    record["status"] = status
    if status == "complete":
        record["finished"] = session["finished"]
    rec.write_record(out, record)
