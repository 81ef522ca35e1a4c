"""Inputs that used to be accepted silently are refused with one line naming the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.cues.norms import NormsProfile, default_norms
from cuelab.core.errors import ModelError, NormsError
from cuelab.core.models.reference import ReferenceWeights
from cuelab.core.models.registry import DEMO_REFERENCE
from cuelab.core.runs.record import extra_columns
from cuelab.core.tasks.sseu.matching import load_text_encoder


def _profile(**change: object) -> dict:
    data = json.loads(json.dumps(default_norms().to_json()))
    data.update(change)
    return data


def test_norms_without_descriptors_or_with_bad_thresholds_are_refused() -> None:
    NormsProfile.from_json(_profile())  # the shipped profile is fine
    with pytest.raises(
        NormsError, match=r"no statistics for descriptor .* every concept would be MID"
    ):
        NormsProfile.from_json(_profile(descriptors={}))
    vq = default_norms().voice_quality
    with pytest.raises(NormsError, match="unknown voice-quality threshold 'jiter_high'"):
        NormsProfile.from_json(_profile(voice_quality={**vq, "jiter_high": 1.0}))
    key = next(iter(vq))
    with pytest.raises(NormsError, match=f"threshold '{key}' is not a finite number"):
        NormsProfile.from_json(_profile(voice_quality={**vq, key: float("nan")}))


def test_a_reference_model_with_nan_weights_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "ref"
    shutil.copytree(DEMO_REFERENCE, folder)
    arrays = load_file(str(folder / "weights.safetensors"))
    arrays["coef"] = arrays["coef"].copy()
    arrays["coef"][0, 0] = np.nan
    save_file(arrays, str(folder / "weights.safetensors"))
    with pytest.raises(ModelError, match="weight 'coef' holds NaN or infinite values"):
        ReferenceWeights.load(folder)


def test_a_pickle_only_encoder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "modules.json").write_text("[]")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ModelError, match="not safetensors") as err:
        load_text_encoder(tmp_path)
    assert "\n" not in str(err.value)


def test_clashing_manifest_columns_get_distinct_names() -> None:
    cols = extra_columns(["path", "model", "manifest_model", "scoring", "note"], ["a", "b"])
    names = [name for _, name in cols]
    assert len(names) == len(set(names)) == 4
    assert dict(cols) == {"model": "manifest2_model", "manifest_model": "manifest_model",
                          "scoring": "manifest_scoring", "note": "note"}  # fmt: skip
