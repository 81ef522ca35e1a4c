"""The window agrees with the model it loaded (issue 24, trap 8)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO


def test_the_model_form_shows_the_loaded_model(make_window, qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "my-reference"
    shutil.copytree(REPO / "assets" / "models" / "demo-reference", folder)
    win = make_window()
    panel = win.model_panel
    with qtbot.waitSignal(win.session.model_changed, timeout=60_000):
        win.open_demo(None, "oracle:-")  # what `cuelab gui --model oracle:-` does
    assert panel.family_combo.currentText() == "oracle"
    assert panel.location_edit.text() == "-"
    with qtbot.waitSignal(win.session.model_changed, timeout=60_000):
        win.session.load_model(f"reference:{folder}")
    assert panel.family_combo.currentText() == "reference"
    assert panel.location_edit.text() == str(folder)
    assert panel.state_label.text().startswith(f"reference:{folder}")
