"""Errors carry a subject and typed remedies; the CLI words each remedy as its flag.

The window's wording, and the actions it offers, are tested under Qt in
``tests/ui/test_error_remedies.py`` (the window fixtures live there).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.cli.remedies import cli_text
from cuelab.cli.remedies import phrase as cli_phrase
from cuelab.core import errors
from cuelab.core.errors import CueLabError, ModelError, Remedy, RemedyKind, remedies_of
from cuelab.core.runs import RunConfig, RunConfigError
from cuelab.ui.remedies import phrase as window_phrase
from cuelab.ui.remedies import window_text

#: One remedy of every kind (the kinds that need a value get one).
ALL = [Remedy(kind, "ms-clap" if kind is RemedyKind.BUILD_ENV else "qwen2-audio:x") if kind in (
    RemedyKind.BUILD_ENV, RemedyKind.MODEL_SPEC) else Remedy(kind) for kind in RemedyKind]  # fmt: skip


@pytest.mark.parametrize("remedy", ALL, ids=lambda r: r.kind.value)
def test_every_remedy_is_worded_by_the_cli_and_the_window(remedy: Remedy) -> None:
    cli, window = cli_phrase(remedy), window_phrase(remedy)
    assert cli and window and "\n" not in cli + window
    assert "--" in cli or "cuelab " in cli  # the command line names what to type
    assert "--" not in window and "cuelab env" not in window  # the window names its controls
    if remedy.value is not None:
        assert remedy.value in cli


def test_the_message_names_no_flag_and_the_front_ends_add_their_remedy() -> None:
    exc = RunConfigError(
        "/r already holds a run",
        subject=Path("/r"),
        remedy=(errors.RESUME, errors.NEW_OUTPUT_FOLDER),
    )
    assert str(exc) == "/r already holds a run" and exc.subject == Path("/r")
    assert exc.remedy == errors.RESUME and exc.remedies[1] == errors.NEW_OUTPUT_FOLDER
    assert (
        cli_text(exc)
        == "/r already holds a run; add --resume to continue it, or choose another --out"
    )
    assert window_text(exc) == (
        "/r already holds a run; press Resume to continue it, or choose another run folder"
    )
    plain = CueLabError("nothing to do about it")
    assert plain.remedy is None and cli_text(plain) == window_text(plain) == str(plain)


def test_a_remedy_survives_pickling_and_a_wrapper_raised_from_it() -> None:
    core = ModelError("model /m has only pickle weights", subject="/m", remedy=errors.ALLOW_PICKLE)
    back = pickle.loads(pickle.dumps(core))  # a process pool or a worker sends it this way
    assert type(back) is ModelError and str(back) == str(core)
    assert back.subject == "/m" and back.remedies == (errors.ALLOW_PICKLE,)
    try:
        try:
            raise core
        except ModelError as inner:
            raise ModelError(f"model qwen2-audio:/m: cannot load: {inner}") from inner
    except ModelError as outer:
        assert remedies_of(outer) == (errors.ALLOW_PICKLE,)
        assert window_text(outer).endswith("tick 'Allow pickle' (Safety) if you trust the source")
        assert "--allow-pickle" in cli_text(outer)
    assert remedies_of(ValueError("x")) == ()


def test_config_errors_carry_their_remedy() -> None:
    with pytest.raises(RunConfigError) as info:
        RunConfig(manifest="m.csv", models=(), conditions=("audio-only",), out="o")
    assert info.value.remedy == errors.LOAD_MODEL
    assert cli_text(info.value) == "run configuration: no model given; give one with --model SPEC"
    assert window_text(info.value) == (
        "run configuration: no model given; load a model or type its spec"
    )


def test_the_cli_prints_the_remedy_as_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real ``cuelab eval`` into a folder with predictions and no record: one line, its flag."""
    from tests.cli.conftest import eval_args
    from tests.conftest import REPO

    out = tmp_path / "run"
    out.mkdir()
    (out / "predictions.csv").write_text("utt_id\n", encoding="utf-8")
    assert main(eval_args(REPO / "assets" / "demo" / "manifest.csv", out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"cuelab: error: {out} has predictions.csv but no run.json; choose another --out"
    ]


def test_a_pickle_checkpoint_is_refused_with_its_subject_and_remedy(tmp_path: Path) -> None:
    from cuelab.core.models.registry import load_model

    weights = tmp_path / "CLAP_weights_2023.pth"
    weights.write_bytes(b"\x80\x02}q\x00.")  # the bytes of a pickle
    with pytest.raises(ModelError) as info:
        load_model(f"ms-clap:{weights}")
    assert info.value.remedy == errors.ALLOW_PICKLE and info.value.subject == weights
    assert "--" not in str(info.value)


# --- config constraints as data ---------------------------------------------------------

BASE = {"manifest": "m.csv", "models": ("reference",), "conditions": ("audio-only",), "out": "o"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": ("a", "a")}, "a model is listed twice"),
        ({"seeds": ()}, "seeds must not be empty"),
        ({"seeds": (1, 1)}, "a seed is listed twice"),
        ({"seeds": (-1,)}, "seeds must be 0 or more"),
        ({"bootstrap": 0}, "bootstrap must be at least 1 resample"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"quant": "int3"}, "quant 'int3' is not one of auto, nf4, 8bit, bf16, fp16, fp32"),
        ({"device": "tpu"}, "device 'tpu' is not one of auto, cuda, cpu"),
        ({"scoring": "beam"}, "scoring 'beam' is not one of auto, first-token, continuation, generate"),
        ({"label_score": "max"}, "label_score 'max' is not sum or mean"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"threads": 0}, "threads must be at least 1"),
        ({"workers": 0}, "workers must be at least 1"),
        ({"answers": "open"}, "'answers' is for speech/scene/event runs"),
        ({"matcher": "embeddings:x"}, "'matcher' is for speech/scene/event runs; an emotion run has no free answers to match"),
        ({"joint": True, "sseu_tasks": ("asr", "lid")}, "unknown SSEU task 'lid' (asr, asc, at, joint, cot)"),
        ({"joint": True, "sseu_tasks": ("asr", "asr")}, "an SSEU task is listed twice"),
        ({"joint": True, "answers": "free"}, "answers 'free' is not open or closed"),
        ({"joint": True, "max_new_tokens": 0}, "max_new_tokens must be at least 1"),
        ({"cot": True, "cot_max_new_tokens": 0}, "cot_max_new_tokens must be at least 1"),
    ],
)  # fmt: skip
def test_each_constraint_gives_its_message(change: dict, message: str) -> None:
    """The messages come from the table, in today's words (one line, prefixed)."""
    with pytest.raises(RunConfigError) as info:
        RunConfig(**{**BASE, **change})
    assert str(info.value) == "run configuration: " + message
    assert info.value.subject in change  # the key at fault


def test_the_tables_name_only_real_keys_and_a_valid_config_passes() -> None:
    from dataclasses import fields

    from cuelab.core.runs import constraints

    names = {f.name for f in fields(RunConfig)}
    for table in (constraints.PARAMETER_CONSTRAINTS, constraints.EMOTION_CONSTRAINTS,
                  constraints.SSEU_CONSTRAINTS):  # fmt: skip
        assert set(table) <= names
    assert RunConfig(**BASE).limit is None
    assert RunConfig(**{**BASE, "conditions": ("audio-only",), "joint": True}).is_sseu
    constraints.check({"limit": 3}, {"limit": (constraints.AtLeast(1),)}, RunConfigError)
