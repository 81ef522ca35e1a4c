"""Batch evaluation runs: plan, execute, resume, cancel, shard and merge.

The package's face is the public entry point the command line and the window
use. Inside: ``config`` (what a run does), ``plan`` (clips, tokens, variants),
``folder`` (the run folder: lock, run.json across sessions), ``writer`` (the
durable prediction writer, errors.csv), ``model_run`` (model loading, checked
against run.json), ``ordering`` (results in manifest order, several in flight),
``emotion`` and ``edit_run`` (the emotion loops), ``sseu`` (the SSEU task kind;
how a clip is answered is :mod:`cuelab.core.tasks.sseu.answering`), ``engine``
(:func:`run_eval` and :func:`~cuelab.core.runs.engine.run_kind`, the engine of a task kind), ``record`` (run.json and the
predictions layout), ``csvio`` (spreadsheet-safe CSV) and ``merge`` (shards).
The tables and plots of a finished run are :mod:`cuelab.core.reports`.

Typical use from a worker thread::

    control = JobControl(on_progress=emit)       # emit: ProgressInfo -> signal
    config = load_config("run.toml")
    run_eval(config, resume=True, control=control)   # Cancelled on control.cancel()
    build_report(config.out)
"""

from __future__ import annotations

from cuelab.core.runs.config import (
    RunConfig,
    RunConfigError,
    Shard,
    config_from_mapping,
    load_config,
    parse_shard,
)
from cuelab.core.runs.engine import run_eval
from cuelab.core.runs.folder import RunFolder, RunOutcome
from cuelab.core.runs.merge import merge_runs
from cuelab.core.runs.record import RunRecord, read_record

__all__ = [
    "RunConfig",
    "RunConfigError",
    "RunFolder",
    "RunOutcome",
    "RunRecord",
    "Shard",
    "config_from_mapping",
    "load_config",
    "merge_runs",
    "parse_shard",
    "read_record",
    "run_eval",
]
