"""The model panel's environment row for isolated families (state; building in the background)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.core.models.isolated import envs
from cuelab.ui.model_panel import ModelPanel
from cuelab.ui.session import Session


@pytest.fixture
def panel(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelPanel:
    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))
    session = Session()
    widget = ModelPanel(session)
    qtbot.addWidget(widget)
    yield widget
    session.shutdown()


def test_the_environment_row_shows_only_for_isolated_families(panel: ModelPanel) -> None:
    panel.family_combo.setCurrentText("reference")
    assert not panel.form.isRowVisible(panel.env_row)
    panel.family_combo.setCurrentText("ms-clap")
    assert panel.form.isRowVisible(panel.env_row)
    assert panel.env_label.text() == "missing"
    assert panel.env_button.text() == "Create"


def test_a_failed_build_is_reported_and_the_row_says_why(
    panel: ModelPanel, qtbot, tmp_path: Path
) -> None:
    """Create runs off the GUI thread; a folder that holds something else is refused in one line."""
    target = tmp_path / "envs" / "laion-clap"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("not an environment")
    panel.family_combo.setCurrentText("laion-clap")
    assert panel.env_label.text().startswith("broken")
    with qtbot.waitSignal(panel.session.error, timeout=30_000) as blocker:
        panel.env_button.click()
    assert "holds no CueLab environment" in blocker.args[0]
    qtbot.waitUntil(lambda: panel.env_button.isEnabled(), timeout=10_000)
    assert (target / "notes.txt").exists()
    assert envs.env_status("laion-clap").state == envs.BROKEN


def test_pickled_weights_load_only_once_allow_pickle_is_ticked(
    panel: ModelPanel, qtbot, tmp_path: Path
) -> None:
    """A checkpoint saved as pickles (.bin) is refused with the window's own wording; ticking
    'Allow pickle' loads it, and a batch run from the window carries the choice."""
    import torch
    from safetensors.torch import load_file

    from cuelab.core.models import tiny

    folder = tiny.build_qwen2_audio(tmp_path / "tiny")
    weights = folder / "model.safetensors"
    torch.save(load_file(str(weights)), folder / "pytorch_model.bin")  # the older release layout
    weights.unlink()
    panel.family_combo.setCurrentText("qwen2-audio")
    assert panel.form.isRowVisible(panel.trust_row)
    assert not panel.pickle_check.isChecked() and not panel.remote_code_check.isChecked()
    panel.location_edit.setText(str(folder))
    panel.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(panel.session.model_failed, timeout=120_000):
        panel.load()
    message = panel.progress_label.text()
    assert "tick 'Allow pickle' (Safety)" in message and "--allow-pickle" not in message
    assert panel.session.model is None
    panel.pickle_check.setChecked(True)
    with qtbot.waitSignal(panel.session.model_changed, timeout=120_000):
        panel.load()
    assert panel.session.model is not None
    assert panel.session.model_trust == {"allow_pickle": True, "trust_remote_code": False}
    panel.family_combo.setCurrentText("reference")
    assert not panel.form.isRowVisible(panel.trust_row) and not panel.pickle_check.isChecked()


def test_a_build_can_be_cancelled_and_its_state_speaks_of_the_button(
    panel: ModelPanel, qtbot, tmp_path: Path
) -> None:
    """While building, the button is Cancel; cancelled, the row says what happened in the
    window's words (Create), not by a command line to type."""
    panel.family_combo.setCurrentText("ms-clap")
    panel.env_button.click()
    assert panel.env_button.text() == "Cancel" and panel.env_button.isEnabled()
    qtbot.waitUntil(lambda: "virtual environment" in panel.progress_label.text(), timeout=30_000)
    panel.env_button.click()  # Cancel: the venv subprocess is stopped
    qtbot.waitUntil(lambda: not panel.env_slot.busy, timeout=30_000)
    assert panel.env_button.text() == "Create"
    assert envs.env_status("ms-clap").state != envs.READY
    assert panel.env_label.text().startswith("broken")
    assert "cuelab env" not in panel.env_label.text() and "Create" in panel.env_label.text()


def test_the_location_stays_with_its_family(panel: ModelPanel) -> None:
    panel.family_combo.setCurrentText("qwen2-audio")
    panel.location_edit.setText("/models/Qwen2-Audio-7B-Instruct")
    panel.family_combo.setCurrentText("openai")
    assert panel.location_edit.text() == ""  # not the Qwen folder as a server URL
    panel.location_edit.setText("http://gpu1:8000/v1")
    panel.family_combo.setCurrentText("qwen2-audio")
    assert panel.location_edit.text() == "/models/Qwen2-Audio-7B-Instruct"
    panel.family_combo.setCurrentText("openai")
    assert panel.location_edit.text() == "http://gpu1:8000/v1"
