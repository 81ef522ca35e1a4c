"""The window's rules, tested through the Qt-free workbench model (no PySide6 here).

Undo and redo, stale-result dropping, pinning, the label-set choice and analysis of a
region run on a real :class:`~cuelab.core.workbench.Workbench` with real openSMILE features
and real models; :func:`~cuelab.core.workbench.predict` gives the very line
``cuelab predict --json`` prints.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.cues.interventions import ablate, conflict
from cuelab.core.cues.tokens import parse_tokens
from cuelab.core.datasets import read_manifest
from cuelab.core.models.registry import load_model
from cuelab.core.workbench import (
    MIN_SEGMENT_S,
    PIN_LETTERS,
    Analysis,
    AnalysisChanged,
    ClipChanged,
    Event,
    LabelsChanged,
    ModelChanged,
    PinsChanged,
    PredictionChanged,
    PredictionNeeded,
    PredictionUpdate,
    PredictRequest,
    Refused,
    TokensChanged,
    Workbench,
    analyse,
    make_clip,
    predict,
)
from tests.conftest import REPO
from tests.core.synth import SR, voiced

DEMO = REPO / "assets" / "demo"


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    """Two seconds: a low, soft vowel, then a high, loud one (the halves differ)."""
    return np.concatenate([voiced(110.0, 1.0, amp=0.05), voiced(260.0, 1.0, amp=0.6, seed=1)])


@pytest.fixture(scope="module")
def whole(signal: np.ndarray) -> Analysis:
    return analyse(signal, SR, name="two vowels")


@pytest.fixture()
def wb(signal: np.ndarray, whole: Analysis) -> tuple[Workbench, list[Event]]:
    """A workbench showing ``signal``, analysed, with every event it raised recorded."""
    bench = Workbench()
    events: list[Event] = []
    bench.subscribe(events.append)
    bench.set_clip(signal, SR, "two vowels")
    stamp = bench.stamp()
    bench.analysis_started()
    assert bench.accept_analysis(whole, stamp)
    events.clear()
    return bench, events


def _update(bench: Workbench, p: float = 0.7) -> PredictionUpdate:
    """An answer for what ``bench`` shows now (as the window's predict job builds it)."""
    rest = (1 - p) / (len(bench.labels) - 1)
    probs = {lab: (p if i == 0 else rest) for i, lab in enumerate(bench.labels)}
    text = bench.tokens.text() if bench.tokens is not None else ""
    return PredictionUpdate(bench.labels, probs, probs, text, 0.01, 0.02, bench.clip_key,
                            bench.model_spec, bench.region)  # fmt: skip


# --- undo and redo --------------------------------------------------------------------


def test_undo_and_redo_walk_the_token_history(wb) -> None:
    bench, events = wb
    aligned = bench.aligned
    assert bench.tokens == aligned and not bench.can_undo and not bench.can_redo
    assert bench.set_tokens(conflict(aligned))
    assert bench.set_tokens(ablate(aligned, "PITCH"))
    assert bench.undo() and bench.tokens == conflict(aligned)
    assert bench.undo() and bench.tokens == aligned
    assert not bench.undo()  # nothing older: the tokens stay
    assert bench.tokens == aligned and bench.can_redo
    assert bench.redo() and bench.tokens == conflict(aligned)
    # A new edit after an undo drops what could be redone.
    bench.set_tokens(aligned.without("ENERGY"))
    assert not bench.can_redo and not bench.redo()
    assert bench.undo() and bench.tokens == conflict(aligned)
    # Every step told the subscribers and asked for a new prediction.
    kinds = [type(e) for e in events]
    assert kinds.count(TokensChanged) == 7 and kinds.count(PredictionNeeded) == 7


def test_a_new_analysis_starts_a_new_history(wb, whole: Analysis) -> None:
    bench, _ = wb
    bench.set_tokens(conflict(bench.aligned))
    assert bench.can_undo
    stamp = bench.stamp()
    bench.set_clip(bench.audio, SR, "the same samples, opened again")
    bench.analysis_started()
    assert bench.accept_analysis(whole, stamp) is False  # computed before the new clip
    bench.accept_analysis(whole, bench.stamp())
    assert bench.tokens == whole.tokens and not bench.can_undo


def test_edits_and_undo_are_refused_while_the_clip_is_analysed(wb) -> None:
    bench, events = wb
    bench.set_tokens(conflict(bench.aligned))
    honoured, changed = bench.set_region((0.0, 1.0))
    assert honoured and changed and bench.analysing
    events.clear()
    assert not bench.set_tokens(bench.aligned)
    assert not bench.undo()
    assert [type(e) for e in events] == [Refused]
    assert "being analysed" in events[0].message


def test_a_clip_that_failed_has_no_tokens_to_edit(wb) -> None:
    bench, events = wb
    bench.set_tokens(conflict(bench.aligned))
    bench.clip_failed(Path("broken.wav"), None, "broken.wav: not audio")
    assert bench.audio is None and bench.tokens is None and not bench.can_undo
    assert not bench.analysing  # failed, not pending
    events.clear()
    assert not bench.set_tokens(parse_tokens("ENERGY=HIGH"))
    assert [type(e) for e in events] == [Refused] and "no tokens" in events[0].message


# --- stale results --------------------------------------------------------------------


def test_an_answer_for_older_tokens_is_dropped(wb) -> None:
    bench, events = wb
    stamp = bench.stamp()
    old = _update(bench)
    bench.set_tokens(conflict(bench.aligned))  # an edit while the model was answering
    assert bench.accept_prediction(old, stamp) is False
    assert bench.prediction is None and not any(isinstance(e, PredictionChanged) for e in events)
    stamp = bench.stamp()
    new = _update(bench)
    assert bench.accept_prediction(new, stamp)
    assert bench.prediction is new and bench.predictions_by_clip[bench.clip_key] is new
    assert isinstance(events[-1], PredictionChanged) and events[-1].update is new


def test_an_analysis_or_answer_for_another_region_or_clip_is_dropped(
    wb, signal: np.ndarray
) -> None:
    bench, _ = wb
    stamp = bench.stamp()
    answer, analysis = _update(bench), analyse(signal, SR)
    bench.set_region((1.0, 2.0))
    assert not bench.accept_prediction(answer, stamp)
    assert not bench.accept_analysis(analysis, stamp)
    assert bench.features is None and bench.concepts is None  # nothing of the old region
    stamp = bench.stamp()
    bench.set_clip(signal[::-1].copy(), SR, "reversed")
    assert not bench.accept_analysis(analysis, stamp)
    assert not bench.analysis_failed("openSMILE failed", stamp)  # a stale failure too
    assert bench.analysis_error == "" and bench.analysing


def test_an_answer_from_before_a_model_or_label_change_is_dropped(wb) -> None:
    bench, _ = wb
    stamp = bench.stamp()
    bench.set_model(load_model("oracle:-"), "oracle:-", bench.labels)
    assert not bench.accept_prediction(_update(bench), stamp)


# --- pins -----------------------------------------------------------------------------


def test_pins_a_b_c_then_full(wb) -> None:
    bench, events = wb
    answers = []
    for tokens in (bench.aligned, conflict(bench.aligned), ablate(bench.aligned, "PITCH")):
        bench.set_tokens(tokens)
        answers.append(_update(bench))
        assert bench.pin(answers[-1])
    assert not bench.pin(_update(bench))  # A, B and C are taken
    assert bench.pinned is answers[0] and len(bench.pins) == len(PIN_LETTERS)
    assert [bench.pin_text(letter) for letter in PIN_LETTERS] == [
        bench.aligned.text(), conflict(bench.aligned).text(), ablate(bench.aligned, "PITCH").text()
    ]  # fmt: skip
    assert sum(isinstance(e, PinsChanged) for e in events) == 3
    # A token edit keeps them: pins compare token sets on one clip, region and model.
    bench.set_tokens(bench.aligned.without("ENERGY"))
    assert len(bench.pins) == 3
    bench.unpin_all()
    assert bench.pins == [] and bench.pin_text("A") == ""


@pytest.mark.parametrize("change", ["region", "clip", "model"])
def test_pins_go_when_the_clip_region_or_model_changes(wb, change: str) -> None:
    bench, events = wb
    bench.pin(_update(bench))
    bench.pin(_update(bench, 0.5))
    events.clear()
    if change == "region":
        bench.set_region((0.25, 1.75))
    elif change == "clip":
        bench.set_clip(bench.audio, SR, "another name")
    else:
        bench.set_model(load_model("oracle:-"), "oracle:-", bench.labels)
    assert bench.pins == [] and bench.pinned is None
    assert any(isinstance(e, PinsChanged) for e in events)


def test_a_short_region_is_not_pinned_down(wb) -> None:
    bench, _ = wb
    bench.pin(_update(bench))
    honoured, changed = bench.set_region((0.5, 0.5 + MIN_SEGMENT_S / 2))
    assert not honoured and not changed  # the whole clip stays analysed
    assert bench.region is None and len(bench.pins) == 1


def test_side_by_side_holds_four_models_and_drops_answers_for_another_region(wb) -> None:
    from cuelab.core.workbench import MAX_MODELS, ModelAnswer

    bench, _ = wb
    bench.set_model(load_model("oracle:-"), "oracle:-", bench.labels)
    extra = [f"reference:{i}" for i in range(MAX_MODELS)]
    for spec in extra[:-1]:
        bench.compare.add(spec, object(), bench.model_spec)
    with pytest.raises(ValueError, match="at most 4"):
        bench.compare.add(extra[-1], object(), bench.model_spec)
    assert bench.compare.columns(bench.model_spec) == ["oracle:-", *extra[:-1]]
    probs = dict.fromkeys(bench.labels, 0.25)
    bench.compare.answers["reference:0"] = ModelAnswer(
        "reference:0", bench.labels, probs, None, "", bench.clip_key
    )
    bench.set_region((0.5, 1.5))
    assert bench.compare.answers == {} and len(bench.compare.models) == 3


# --- the label set --------------------------------------------------------------------


def _manifest_without(tmp_path: Path, drop: set[str]) -> Path:
    """The demo manifest (paths made absolute) without the rows labelled in ``drop``."""
    with (DEMO / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] not in drop]
    for row in rows:
        row["path"] = str(DEMO / row["path"])
    out = tmp_path / f"without-{'-'.join(sorted(drop))}.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_the_label_set_is_the_datasets_when_it_has_two_else_the_models(tmp_path: Path) -> None:
    bench = Workbench()
    events: list[Event] = []
    bench.subscribe(events.append)
    task_labels = bench.labels
    assert bench.label_source == "the task's labels"
    reference = load_model("reference")
    model_labels = tuple(reference.describe()["labels"])
    bench.set_model(reference, "reference", model_labels)
    assert bench.labels == model_labels and bench.label_source == "the model's labels"
    three = read_manifest(_manifest_without(tmp_path, {"happy"}))
    bench.set_manifest(three)
    assert bench.labels == ("angry", "neutral", "sad")
    assert bench.label_source == f"the dataset's labels ({three.path.name})"
    assert bench.task.labels == ("angry", "neutral", "sad")  # the prompt names them too
    assert LabelsChanged() in events and PredictionNeeded() in events
    # One label is no label set: the model's own again.
    one = read_manifest(_manifest_without(tmp_path, {"happy", "neutral", "sad"}))
    bench.set_manifest(one)
    assert bench.labels == model_labels and bench.label_source == "the model's labels"
    assert bench.clear_model() is reference
    assert bench.labels == task_labels and bench.label_source == "the task's labels"
    assert ModelChanged() in events


# --- analysis and the clip ------------------------------------------------------------


def test_analyse_on_a_region_is_the_analysis_of_those_samples(
    signal: np.ndarray, whole: Analysis
) -> None:
    second = analyse(signal, SR, region=(1.0, 2.0), name="second half")
    alone = analyse(signal[SR:].copy(), SR, name="second half")
    assert second.features.functionals == alone.features.functionals
    assert second.tokens == alone.tokens
    assert second.concepts.scores["ENERGY"] > whole.concepts.scores["ENERGY"]  # the loud half
    bench = Workbench()
    bench.set_clip(signal, SR, "two vowels")
    bench.set_region((2.0, 1.0))  # either order
    assert bench.region == (1.0, 2.0)
    np.testing.assert_array_equal(bench.segment(), signal[SR:])
    clip = bench.clip()
    assert clip.utt_id == "two vowels" and clip.sr == SR and len(clip.audio) == SR


def test_analyse_reads_a_file_whole_through_the_cache_or_a_region_of_it(tmp_path: Path) -> None:
    from cuelab.core.audio.io import load_audio
    from cuelab.core.cues import FeatureCache

    path = DEMO / "spk04_m_sad_01.flac"
    x, sr = load_audio(path, sr=16000)
    part = analyse(path=path, region=(0.2, 0.9), gender="m")
    assert part.features.functionals == analyse(x, sr, region=(0.2, 0.9)).features.functionals
    cache = FeatureCache(tmp_path / "features")
    first = analyse(path=path, gender="m", cache=cache)
    assert len(list((tmp_path / "features").rglob("*"))) > 0  # stored, for the next reader
    assert analyse(path=path, gender="m", cache=cache).features == first.features
    assert first.concepts.edges_used["PITCH"] == "m"
    with pytest.raises(ValueError):
        analyse()


def test_the_workbench_raises_its_events_in_order(signal: np.ndarray, whole: Analysis) -> None:
    bench = Workbench()
    events: list[Event] = []
    unsubscribe = bench.subscribe(events.append)
    bench.set_clip(signal, SR, "two vowels")
    bench.accept_analysis(whole, bench.stamp())
    assert [type(e) for e in events] == [ClipChanged, AnalysisChanged, TokensChanged,
                                         PredictionNeeded]  # fmt: skip
    unsubscribe()
    bench.set_tokens(conflict(bench.aligned))
    assert len(events) == 4


def test_make_clip_copies_the_manifest_fields(signal: np.ndarray) -> None:
    meta = {"gender": "f"}
    clip = make_clip(signal, SR, "x", None, meta)
    meta["gender"] = "m"
    assert clip.meta == {"gender": "f"} and clip.audio is signal and clip.features is None


# --- predict --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--tokens", "ENERGY=HIGH PITCH=LOW", "--labels", "angry,happy,neutral,sad"],
        ["--tokens", "none", "--edit", "gain=-6dB"],
    ],
    ids=["tokens-auto", "given-tokens", "edited"],
)
def test_predict_gives_the_line_cuelab_predict_json_prints(flags: list[str]) -> None:
    import argparse

    from cuelab.cli.common import json_line
    from cuelab.cli.predict import _check_options, register, request

    audio = str(DEMO / "spk04_m_sad_01.flac")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run([sys.executable, "-m", "cuelab", "predict", audio, "--model", "reference",
                           *flags, "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # The same flags through the parser the command uses, then straight into predict().
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["predict", audio, "--model", "reference", *flags])
    _check_options(args)
    req = request(args)
    assert isinstance(req, PredictRequest)
    result = predict(req)
    assert proc.stdout == json_line(result.record) + "\n"
    if not flags:
        assert result.analysis is not None and result.record["gender"] == "m"
        assert result.record["tokens"] == result.analysis.concepts.text()


def test_the_workbench_imports_no_qt() -> None:
    code = ("import sys, cuelab.core.workbench, cuelab.cli.predict; "
            "sys.exit(any(m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph') "
            "for m in sys.modules))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert (
        subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, timeout=120).returncode == 0
    )
