"""Run a batch evaluation: the one entry point, and the engine that runs a task kind.

:func:`run_kind` runs any :class:`~cuelab.core.tasks.kind.TaskKind`: it owns the
folder, run.json across sessions, the durable writer, failed clips, model
loading and the order of work, and sees the kind's items and rows, never its
internals. Speech/scene/event runs are the kind
:class:`~cuelab.core.runs.sseu.SseuKind`, emotion runs with audio edits
:class:`~cuelab.core.runs.edit_run.EditKind`. Emotion runs without edits
(:mod:`cuelab.core.runs.emotion`) still have their own loop over the same
folder, writer, model run and ordering modules: their features stream while the
first model loads and scores, which the engine does not model yet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cuelab.core.cues.feature_cache import FeatureCache
from cuelab.core.jobs import JobControl
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.edit_run import EditKind
from cuelab.core.runs.emotion import run_emotion_eval
from cuelab.core.runs.folder import RunFolder, RunOutcome, replaced_note
from cuelab.core.runs.model_run import ModelLoader, ModelRun, default_loader
from cuelab.core.runs.ordering import in_order
from cuelab.core.runs.sseu import SseuKind
from cuelab.core.tasks.kind import TaskKind

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
        if config.is_sseu:
            return run_kind(
                SseuKind(config), config, resume=resume, control=control, command=command,
                loader=loader,
            )  # fmt: skip
        if config.edits:  # the audio edits crossed with the conditions
            return run_kind(
                EditKind(config, cache), config, resume=resume, control=control,
                command=command, loader=loader,
            )  # fmt: skip
        return run_emotion_eval(
            config, resume=resume, control=control, command=command, cache=cache, loader=loader,
            stream_features=stream_features,
        )  # fmt: skip


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
    resume), then per model the items still to do, in order, each batch of rows
    durable before the next. Same contract as :func:`run_eval` otherwise.
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
    written = 0
    failures = folder.failures(config.fail_fast)
    with folder.session(record, session, writer), failures:
        if kind.begin(writer.done, record.sections, ctl, failures.add):
            folder.write_record(record)
        todo = kind.todo(writer.done, config.models)
        ctl.start(kind.units(todo), kind.progress)
        for spec in config.models:
            if not todo[spec]:
                continue
            ctx = ModelRun(spec, config, record, folder.path, loader or default_loader)
            try:

                def failed(utt: str, path: str, stage: str, error: str, spec: str = spec) -> None:
                    failures.add(utt, path, spec, stage, error)

                answer = kind.answerer(ctx.adapter, spec, ctl, failed)
                workers = ctx.adapter.concurrency
                for item, (cells, units) in in_order(answer, todo[spec], workers, ctl):
                    writer.append(cells)
                    written += len(cells)
                    ctl.advance(units, ctx.progress(kind.item_name(item)))
            finally:
                ctx.close()
    log.info(
        "%s run %s complete: %d rows written, %d kept", kind.name, folder, written, writer.kept
    )
    notes = (*replaced, *kind.notes())
    return RunOutcome(folder.path, written, writer.kept, kind.clips(), notes, len(failures.rows))
