"""Batch evaluation runs: plan, execute, resume, cancel, shard and merge.

The implementation lives in :mod:`cuelab.core.runs`; this module is the
public entry point the command line and the window use.

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
from cuelab.core.runs.engine import RunOutcome, run_eval
from cuelab.core.runs.merge import merge_runs
from cuelab.core.runs.record import read_record

__all__ = [
    "RunConfig",
    "RunConfigError",
    "RunOutcome",
    "Shard",
    "config_from_mapping",
    "load_config",
    "merge_runs",
    "parse_shard",
    "read_record",
    "run_eval",
]
