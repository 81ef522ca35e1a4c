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
