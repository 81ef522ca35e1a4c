"""Several models on one clip, concept sweeps across them, and pins A, B and C."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cuelab.core.cues.tokens import VOCAB
from cuelab.ui.compare import MAX_MODELS, CompareState

TIMEOUT_MS = 60_000


def _cli_probs(path, manifest, labels, tokens: str) -> dict:
    """``cuelab predict --json`` with the shipped reference model, in its own process."""
    cmd = [sys.executable, "-m", "cuelab", "predict", "--model", "reference", "--json",
           "--labels", ",".join(labels), "--tokens", tokens, str(path)]  # fmt: skip
    if tokens == "auto":
        cmd[-1:-1] = ["--manifest", str(manifest)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout)


def _add_oracle(win, qtbot) -> None:
    panel = win.side_by_side
    with qtbot.waitSignal(panel.answers_changed, timeout=TIMEOUT_MS):
        panel.add_model("oracle")
    assert "oracle" in panel.state.answers


def test_two_models_are_two_columns_equal_to_separate_predictions(
    ready_window, qtbot, small_manifest
):
    win = ready_window
    s, panel = win.session, win.side_by_side
    _add_oracle(win, qtbot)
    assert panel.state.columns(s.model_spec) == ["reference", "oracle"]
    assert panel.table.columnCount() == 1 + 3 * 2
    labels = list(s.labels)
    row = s.row
    # The session's model, against the command line in another process.
    with_tokens = _cli_probs(row.path, small_manifest, labels, "auto")
    audio_only = _cli_probs(row.path, small_manifest, labels, "none")
    assert with_tokens["tokens"] == s.tokens.text() == s.prediction.token_text
    for lab in labels:
        assert panel.value("reference", lab, "audio") == f"{audio_only['probs'][lab]:.3f}"
        assert panel.value("reference", lab, "tokens") == f"{with_tokens['probs'][lab]:.3f}"
        # The oracle: probability 1 on the manifest's label, with or without tokens.
        truth = f"{float(lab == row.fields['label']):.3f}"
        assert panel.value("oracle", lab, "audio") == truth
        assert panel.value("oracle", lab, "tokens") == truth
        assert panel.value("oracle", lab, "Δ") == "+0.000"
    # An edit re-scores both models on the new token text.
    old = s.tokens["ENERGY"]
    new = VOCAB["ENERGY"][0] if old != VOCAB["ENERGY"][0] else VOCAB["ENERGY"][-1]
    with qtbot.waitSignal(panel.answers_changed, timeout=TIMEOUT_MS):
        win.concepts_panel.choose("ENERGY", new)
    assert panel.state.answers["oracle"].token_text == s.prediction.token_text
    assert s.prediction.token_text != with_tokens["tokens"]
    for lab in labels:
        assert panel.value("reference", lab, "tokens") == f"{s.prediction.with_tokens[lab]:.3f}"
    # Removing the second model removes its columns.
    panel.remove_model("oracle")
    assert panel.table.columnCount() == 1 + 3
    assert panel.state.columns(s.model_spec) == ["reference"]


def test_at_most_four_models_and_a_failed_load_says_why(ready_window, qtbot):
    win, panel = ready_window, ready_window.side_by_side
    with qtbot.waitSignal(panel.load_slot.failed, timeout=TIMEOUT_MS):
        panel.add_model("reference:/no/such/model/folder")
    assert "cannot load" in panel.status_label.text()
    assert panel.state.columns(win.session.model_spec) == ["reference"]
    panel.add_model("reference")  # already the first column
    assert "already shown" in panel.status_label.text()
    state = CompareState()
    for i in range(MAX_MODELS - 1):
        state.add(f"m{i}", object(), "reference")
    with pytest.raises(ValueError, match="at most 4"):
        state.add("one-more", object(), "reference")


def test_a_sweep_equals_predictions_with_each_level_set_by_hand(ready_window, qtbot):
    win = ready_window
    s, panel = win.session, win.side_by_side
    _add_oracle(win, qtbot)
    chip = win.concepts_panel.chips["ENERGY"]
    with qtbot.waitSignal(panel.sweep_done, timeout=TIMEOUT_MS):
        chip.sweep_action.trigger()  # the chip's own menu item
    assert win.answer_tabs.currentWidget().widget() is panel  # the tab is its scroll area
    assert panel.sweep_concept == "ENERGY" and set(panel.sweep_result) == {"reference", "oracle"}
    curves = panel.sweep_result["reference"]
    truth = s.row.fields["label"]
    for lab in s.labels:
        assert panel.sweep_result["oracle"][lab] == [float(lab == truth)] * 5
    # one drawn curve per label and model
    assert len(panel.plot.getPlotItem().listDataItems()) == 2 * len(s.labels)
    for i, level in enumerate(VOCAB["ENERGY"]):
        if s.tokens["ENERGY"] != level:
            with qtbot.waitSignal(s.prediction_changed, timeout=TIMEOUT_MS):
                win.concepts_panel.choose("ENERGY", level)
        assert s.prediction.token_text.startswith(f"ENERGY={level} ")
        for lab in s.labels:
            assert curves[lab][i] == pytest.approx(s.prediction.with_tokens[lab], abs=1e-9)
    # the levels matter for this clip: a flat sweep would pass by accident
    assert any(max(c) - min(c) > 0.01 for c in curves.values())


def test_pins_a_b_and_c_keep_their_own_token_texts(ready_window, qtbot):
    win = ready_window
    s, panel = win.session, win.predictions_panel
    texts, answers = [], []
    levels = [t for t in VOCAB["PITCH"] if t != s.tokens["PITCH"]]
    for k, letter in enumerate("ABC"):
        assert panel.pin_button.text() == f"Pin as {letter}"
        panel.pin_button.click()
        texts.append(s.prediction.token_text)
        answers.append(s.prediction)
        with qtbot.waitSignal(s.prediction_changed, timeout=TIMEOUT_MS):
            win.concepts_panel.choose("PITCH", levels[k])
    assert len(set(texts)) == 3
    assert [panel.pin_text(x) for x in "ABC"] == texts
    # A in full, B and C as what differs from A; the tooltip holds all three in full
    assert panel.pin_label.toolTip().splitlines() == [f"{x}: {t}" for x, t in zip("ABC", texts)]
    shown = panel.pin_label.text().splitlines()
    assert shown[0] == f"A: {texts[0]}"
    assert shown[1] == f"B: PITCH={levels[0]} (rest as A)"
    assert shown[2] == f"C: PITCH={levels[1]} (rest as A)"
    now = s.prediction
    for k in range(3):
        assert not panel.table.isColumnHidden(4 + 2 * k)
        for i, lab in enumerate(now.labels):
            pinned = answers[k].with_tokens[lab]
            assert panel.table.item(i, 4 + 2 * k).text() == f"{pinned:.3f}"
            diff = now.with_tokens[lab] - pinned
            assert abs(float(panel.table.item(i, 5 + 2 * k).text()) - diff) < 1.5e-3
    # every letter used: the button unpins them all
    assert panel.pin_button.text() == "Unpin all"
    panel.pin_button.click()
    assert panel.pins == [] and all(panel.table.isColumnHidden(j) for j in range(4, 10))
