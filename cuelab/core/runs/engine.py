"""Run a batch evaluation: the one entry point, which picks the engine for the task kind.

Emotion runs (closed label sets under token interventions) go to
:mod:`cuelab.core.runs.emotion`; speech/scene/event runs to
:mod:`cuelab.core.runs.sseu`. Both share the run folder, writer, model run and ordering modules of :mod:`cuelab.core.runs`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cuelab.core.cues.features import FeatureCache
from cuelab.core.jobs import JobControl
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.edit_run import run_edit_eval
from cuelab.core.runs.emotion import run_emotion_eval
from cuelab.core.runs.folder import RunFolder, RunOutcome
from cuelab.core.runs.model_run import ModelLoader
from cuelab.core.runs.sseu import run_sseu_eval


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
            return run_sseu_eval(
                config, resume=resume, control=control, command=command, loader=loader
            )
        if config.edits:  # the audio edits crossed with the conditions
            return run_edit_eval(
                config, resume=resume, control=control, command=command, cache=cache,
                loader=loader,
            )  # fmt: skip
        return run_emotion_eval(
            config, resume=resume, control=control, command=command, cache=cache, loader=loader,
            stream_features=stream_features,
        )  # fmt: skip
