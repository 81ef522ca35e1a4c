from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cuelab.cli import main
from cuelab.core.audio.io import load_audio
from cuelab.core.cues.concepts import concepts_for_features
from cuelab.core.cues.extract import extract_signal
from cuelab.core.cues.interventions import conflict
from cuelab.core.cues.tokens import TokenSet
from cuelab.core.datasets import read_manifest
from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.reference import TOKEN_DIM, ReferenceWeights, token_vector
from cuelab.core.models.registry import load_model
from cuelab.core.tasks.prompts import load_task
from tests.conftest import REPO

DEMO = REPO / "assets" / "demo" / "manifest.csv"


@pytest.fixture(scope="module")
def demo_clip() -> Clip:
    row = read_manifest(DEMO).split("test")[0]
    x, sr = load_audio(row.path)
    return Clip(audio=x, sr=sr, utt_id=row.utt_id, features=extract_signal(x, sr), meta=row.fields)


def test_token_vector_encoding() -> None:
    assert token_vector(None).sum() == 0 and token_vector(None).shape == (TOKEN_DIM,)
    v = token_vector(TokenSet({"ENERGY": "HIGH", "VOICE_QUALITY": "UNVOICED"}))
    assert v.sum() == 3 and v[3] == 1 and v[-1] == 1  # HIGH is index 3 of ENERGY


def test_shipped_reference_predicts_and_tokens_move_it(demo_clip: Clip) -> None:
    model = load_model("reference")
    task = load_task("ser")
    aligned = concepts_for_features(demo_clip.features, gender=demo_clip.meta["gender"]).tokens
    preds = model.score_labels(
        demo_clip, task, task.labels, [None, aligned.text(), conflict(aligned).text()]
    )
    assert len(preds) == 3
    for p in preds:
        assert set(p.probs) == set(task.labels)
        assert sum(p.probs.values()) == pytest.approx(1.0)
        assert p.label == max(p.probs, key=p.probs.__getitem__)
    diff = max(abs(preds[1].probs[k] - preds[2].probs[k]) for k in task.labels)
    assert diff > 1e-3  # editing tokens changes the prediction
    info = model.describe()
    assert info["family"] == "reference" and len(str(info["weights_sha256"])) == 64


def test_token_edits_move_the_reference_noticeably_on_average() -> None:
    w = ReferenceWeights.load(REPO / "assets/models/demo-reference")
    shifts = []
    for row in read_manifest(DEMO).split("test"):
        x, sr = load_audio(row.path)
        f = extract_signal(x, sr)
        t = concepts_for_features(f, gender=row.gender).tokens
        shifts.append(np.abs(w.probs(f.functionals, t) - w.probs(f.functionals, conflict(t))).max())
    assert np.mean(shifts) > 0.05


def test_reference_shipped_model_beats_chance_on_held_out_speakers() -> None:
    w = ReferenceWeights.load(REPO / "assets/models/demo-reference")
    assert w.info["heldout_uar_correct_tokens"] > 0.4  # chance is 0.25
    assert "baseline" in w.info["note"]


def test_reference_rejects_unknown_labels_and_bad_folder(demo_clip: Clip, tmp_path: Path) -> None:
    model = load_model("reference")
    with pytest.raises(ModelError, match="knows labels"):
        model.score_labels(demo_clip, load_task("ser"), ["joy"], [None])
    with pytest.raises(ModelError, match="not a reference model folder"):
        load_model(f"reference:{tmp_path}")


def test_train_reference_cli_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "ref"
    assert main(["train-reference", str(DEMO), "-o", str(out), "--workers", "1"]) == 0
    w = ReferenceWeights.load(out)
    shipped = ReferenceWeights.load(REPO / "assets/models/demo-reference")
    assert w.labels == ["angry", "happy", "neutral", "sad"]
    np.testing.assert_allclose(w.coef, shipped.coef, atol=1e-6)  # deterministic training
    assert not any(p.suffix in (".pkl", ".pt", ".bin") for p in out.iterdir())


def test_oracle_answers_ground_truth(demo_clip: Clip) -> None:
    oracle = load_model("oracle:-", LoadOptions())
    task = load_task("ser")
    preds = oracle.score_labels(demo_clip, task, task.labels, [None, "ENERGY=LOW"])
    assert all(p.label == demo_clip.meta["label"] for p in preds)
    assert oracle.generate(demo_clip, task, None) == demo_clip.meta["transcript"]
    with pytest.raises(ModelError, match="no label"):
        oracle.score_labels(Clip(audio=demo_clip.audio), task, task.labels, [None])


def test_save_onto_a_file_is_a_model_error(tmp_path: Path) -> None:
    shipped = ReferenceWeights.load(REPO / "assets/models/demo-reference")
    blocker = tmp_path / "model"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="not a folder"):
        shipped.save(blocker)


def test_save_is_complete_and_leaves_no_temp_files(tmp_path: Path) -> None:
    shipped = ReferenceWeights.load(REPO / "assets/models/demo-reference")
    out = shipped.save(tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "weights.safetensors"]
    np.testing.assert_array_equal(ReferenceWeights.load(out).coef, shipped.coef)


def test_load_with_missing_or_misshapen_arrays_is_a_model_error(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    shipped = REPO / "assets/models/demo-reference"
    arrays = load_file(str(shipped / "weights.safetensors"))
    for broken, message in (
        ({k: v for k, v in arrays.items() if k != "intercept"}, "intercept"),
        ({**arrays, "scale": arrays["scale"][:-1]}, "'scale' has shape"),
    ):
        folder = tmp_path / message[:5].strip("'")
        folder.mkdir()
        (folder / "config.json").write_bytes((shipped / "config.json").read_bytes())
        save_file(broken, str(folder / "weights.safetensors"))
        with pytest.raises(ModelError, match=message):
            ReferenceWeights.load(folder)


@pytest.mark.parametrize("c", [0.0, -1.0, float("nan")])
def test_train_reference_refuses_bad_regularisation(c: float) -> None:
    from cuelab.core.models.reference import train_reference

    funcs = [{"a": float(i)} for i in range(6)]
    tokens = [TokenSet({"ENERGY": "LOW"})] * 6
    with pytest.raises(ModelError, match="positive"):
        train_reference(funcs, tokens, ["x", "y"] * 3, c=c)
