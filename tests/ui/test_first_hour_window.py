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
    assert panel.location_edit.text() == str(folder)  # not under the working folder or home
    assert panel.state_label.text().startswith(f"reference:{folder}")


def test_the_form_shows_the_shipped_model_without_an_absolute_path(
    make_window, monkeypatch, tmp_path: Path
) -> None:
    """The README's screenshot showed one machine's absolute path (issue 24, trap 10)."""
    from cuelab.core.models.registry import DEMO_REFERENCE

    monkeypatch.chdir(REPO)  # where scripts/run.sh demo runs the window
    panel = make_window().model_panel
    assert panel.family_combo.currentText() == "reference"
    assert panel.location_edit.text() == "assets/models/demo-reference"
    assert panel.spec() == f"reference:{DEMO_REFERENCE}"  # loads from any folder later
    panel.show_spec(f"reference:{DEMO_REFERENCE}")
    assert panel.location_edit.text() == "assets/models/demo-reference"
    monkeypatch.chdir(tmp_path)
    assert panel.spec() == "reference:assets/models/demo-reference"  # elsewhere: as typed
