"""The side-by-side state and the sweep, without a window (cuelab.ui.compare is Qt-free)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cuelab.core.cues.tokens import VOCAB, TokenSet
from cuelab.ui.compare import CompareState, sweep, sweep_texts


def test_compare_state_keeps_order_refuses_duplicates_and_counts_the_session_model():
    state = CompareState()
    assert state.room("") == 4 and state.room("reference") == 3
    state.add("oracle", "o", "reference")
    state.add("reference:/x", "r", "reference")
    assert state.columns("reference") == ["reference", "oracle", "reference:/x"]
    with pytest.raises(ValueError, match="already shown"):
        state.add("oracle", "o2", "reference")
    with pytest.raises(ValueError, match="already shown"):
        state.add("reference", "r2", "reference")
    state.add("third", "t", "reference")
    assert state.room("reference") == 0
    assert state.remove("oracle") == "o" and state.room("reference") == 1
    assert state.columns("") == ["reference:/x", "third"]


def test_sweep_texts_change_one_concept_and_keep_the_rest():
    tokens = TokenSet({"ENERGY": "HIGH", "PITCH": "LOW", "VOICE_QUALITY": "MODAL"})
    texts = sweep_texts(tokens, "PITCH")
    assert [level for level, _ in texts] == list(VOCAB["PITCH"])
    for level, text in texts:
        assert text == f"ENERGY=HIGH PITCH={level} VOICE_QUALITY=MODAL"


PROBE = (
    "import sys; from cuelab.ui.compare import _probs; _probs({'a': float('nan')}, ['a', 'b']);"
    "print(sorted(sys.modules))"
)


def test_sweep_with_the_reference_model_equals_one_prediction_per_level():
    from cuelab.core.models.base import Clip, LoadOptions
    from cuelab.core.models.registry import load_model
    from cuelab.core.tasks.prompts import load_task

    assert "PySide6" not in subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    clip = Clip(x, 16000, "noise", None, {})
    model = load_model("reference", LoadOptions())
    task = load_task("ser")
    labels = list(task.labels)
    tokens = TokenSet({"ENERGY": "MID", "PITCH": "MID"})
    curves = sweep(model, clip, task, labels, tokens, "ENERGY")
    for i, (_level, text) in enumerate(sweep_texts(tokens, "ENERGY")):
        one = model.score_labels(clip, task, labels, [text])[0]
        for lab in labels:
            assert curves[lab][i] == pytest.approx(one.probs[lab], abs=1e-9)
    assert any(max(c) - min(c) > 1e-3 for c in curves.values())
