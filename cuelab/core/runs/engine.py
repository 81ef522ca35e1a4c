"""Run a batch evaluation: the one entry point, and the engine that runs a task kind.

:func:`run_kind` runs any :class:`~cuelab.core.tasks.kind.TaskKind`: it owns the
folder, run.json across sessions, the durable writer, failed clips, model
loading (the first model in the background while the kind's features are
extracted, when the kind names one) and the order of work, and sees the kind's
items and rows, never its internals. :func:`run_eval` picks the kind: emotion
runs are :class:`~cuelab.core.runs.emotion.EmotionKind`, emotion runs with audio
edits :class:`~cuelab.core.runs.edit_run.EditKind`, speech/scene/event runs
:class:`~cuelab.core.runs.sseu.SseuKind`. A kind may hand the first model its
items in batches as their features arrive (an
:class:`~cuelab.core.tasks.kind.ItemStream`); the rows are written in the same
order either way, so ``kill -9`` and ``--resume`` stay exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from cuelab.core.cues.feature_cache import FeatureCache
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import ModelAdapter
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.edit_run import EditKind
from cuelab.core.runs.emotion import EmotionKind
from cuelab.core.runs.folder import RunFolder, RunOutcome, replaced_note
from cuelab.core.runs.model_run import ModelLoader, ModelRun, default_loader
from cuelab.core.runs.ordering import in_order
from cuelab.core.runs.overlap import ModelPreload
from cuelab.core.runs.sseu import SseuKind
from cuelab.core.runs.writer import ClipFailures, PredictionWriter
from cuelab.core.tasks.kind import ItemStream, TaskKind

log = logging.getLogger(__name__)


def run_eval(
    config: RunConfig,
    *,
    resume: bool = False,
    control: JobControl | None = None,
    command: Sequence[str] | None = None,
    cache: FeatureCache | None = None,
    loader: ModelLoader | None = None,
    stream_features: bool = False,
) -> RunOutcome:
    """Run (or continue) a batch evaluation into ``config.out``.

    Picks the task kind from the configuration (SSEU, emotion with edits, emotion)
    and runs it with :func:`run_kind`, holding the folder's lock.

    Args:
        config: the run configuration.
        resume: continue the run already in ``config.out`` (a fresh run when there is none).
        control: progress (``features`` then ``scoring``: one item per clip and model)
            and cancellation; checked between clips.
        command: the command line, recorded in run.json.
        cache: feature cache (default: the user cache).
        loader: model loader (default: the registry), e.g. to reuse a loaded adapter.
        stream_features: score clips while the next ones' features are extracted (emotion
            runs without shuffle conditions; see :mod:`cuelab.core.runs.overlap`).

    Raises:
        Cancelled: ``control`` was cancelled; everything finished so far is on disk
            and ``resume`` continues it.
        RunConfigError: the folder holds another run, or ``resume`` found a different
            configuration (the message names the key).
    """
    if not str(config.out).strip():
        raise RunConfigError("run configuration: 'out' is empty; name a run folder")
    with RunFolder(config.out).lock():  # one writer per run folder
        kind: TaskKind[Any]
        if config.is_sseu:
            kind = SseuKind(config)
        elif config.edits:  # the audio edits crossed with the conditions
            kind = EditKind(config, cache)
        else:
            kind = EmotionKind(config, cache, stream_features=stream_features)
        return run_kind(
            kind, config, resume=resume, control=control, command=command, loader=loader
        )


def run_kind(
    kind: TaskKind[Any],
    config: RunConfig,
    *,
    resume: bool = False,
    control: JobControl | None = None,
    command: Sequence[str] | None = None,
    loader: ModelLoader | None = None,
) -> RunOutcome:
    """Run (or continue) ``kind`` into ``config.out`` (the caller holds the folder's lock).

    The order of steps is the contract every run folder relies on: the kind's plan
    (a wrong manifest or matcher fails before the folder exists), the record
    (refusing another run), the session, the writer (cutting a torn last row on
    resume), the load of the kind's first model started in the background, the
    kind's begin (features, matchers...) or its stream (the first model answers
    each batch as it is ready), then per model the items still to do, in order,
    each batch of rows durable before the next. Same contract as :func:`run_eval`
    otherwise.
    """
    ctl = control if control is not None else JobControl()
    folder = RunFolder(config.out)
    plan = kind.plan()
    folder.path.mkdir(parents=True, exist_ok=True)
    record = folder.open_record(config, plan.identity, plan.manifest_path, plan.labels, resume)
    replaced = replaced_note(record)
    record.sections.update(kind.sections(record.sections))
    session = rec.start_session(record, command)
    kind.session(session)
    folder.write_record(record)
    writer = folder.open_writer(plan.header, resume, plan.key_columns, rec.row_check(record))
    failures = folder.failures(config.fail_fast)
    load = loader or default_loader
    models = _Models(kind, config, record, folder, load, writer, failures, ctl)
    with folder.session(record, session, writer), failures:
        first = kind.ahead(writer.done, config.models)
        # the first model loads while the kind's features start
        preload = ModelPreload(first, config.load_options(), load) if first is not None else None
        stream = None
        try:
            stream = kind.stream(first, writer.done, record.sections, ctl, failures.add)
            if stream is None:
                if kind.begin(writer.done, record.sections, ctl, failures.add):
                    folder.write_record(record)
                todo = kind.todo(writer.done, config.models)
                ctl.start(kind.units(todo), kind.progress)
            else:  # the first model answers each batch as its features arrive
                ctl.start(kind.units(kind.todo(writer.done, config.models)), kind.progress)
                if first is not None and preload is not None:
                    models.run(first, preload.take(), stream, stream)
                else:
                    for _ in stream:  # begin's work, no model to answer
                        pass
                folder.write_record(record)
                todo = kind.todo(writer.done, config.models)
            for spec in config.models:
                if not todo[spec] or spec in models.done:
                    continue
                taken = preload.take() if preload is not None and spec == preload.spec else None
                models.run(spec, taken, [todo[spec]])
        finally:
            if stream is not None:
                stream.close()
            if preload is not None:
                preload.discard()
    log.info(
        "%s run %s complete: %d rows written, %d kept",
        kind.name, folder, models.written, writer.kept,
    )  # fmt: skip
    notes = (*replaced, *kind.notes())
    return RunOutcome(
        folder.path, models.written, writer.kept, kind.clips(), notes, len(failures.rows)
    )


class _Models:
    """Answers a kind's items model by model, appending the rows in order."""

    def __init__(
        self,
        kind: TaskKind[Any],
        config: RunConfig,
        record: rec.RunRecord,
        folder: RunFolder,
        loader: ModelLoader,
        writer: PredictionWriter,
        failures: ClipFailures,
        ctl: JobControl,
    ) -> None:
        self.kind, self.config, self.record, self.folder = kind, config, record, folder
        self.loader, self.writer, self.failures, self.ctl = loader, writer, failures, ctl
        self.written = 0
        self.done: set[str] = set()  # the models that answered

    def run(
        self,
        spec: str,
        adapter: ModelAdapter | None,
        batches: Iterable[Sequence[Any]],
        stream: ItemStream[Any] | None = None,
    ) -> None:
        """Load ``spec`` (or take its loaded ``adapter``) and answer every batch, in order.

        With ``stream`` the progress lines carry its note as their detail.
        """
        kind, ctl, failures = self.kind, self.ctl, self.failures
        ctx = ModelRun(spec, self.config, self.record, self.folder.path, self.loader, adapter)
        try:

            def failed(utt: str, path: str, stage: str, error: str) -> None:
                failures.add(utt, path, spec, stage, error)

            answer = kind.answerer(ctx.adapter, spec, ctl, failed)
            workers = ctx.adapter.concurrency
            for batch in batches:
                for item, (cells, units) in in_order(answer, batch, workers, ctl):
                    self.writer.append(cells)
                    self.written += len(cells)
                    note = "" if stream is None else stream.note
                    ctl.advance(units, ctx.progress(kind.item_name(item)), note)
        finally:
            ctx.close()
        self.done.add(spec)
