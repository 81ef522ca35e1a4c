"""The window drives a model behind an OpenAI-compatible server (the real-protocol test server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.openai_audio import AudioChatServer, ServerOptions
from tests.ui.conftest import READY_TIMEOUT_MS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from cuelab.core.models import tiny

    folder = tiny.build_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio"))
    srv = AudioChatServer(folder, ServerOptions(model_id="tiny/remote"))
    url = srv.start()
    yield srv, url
    srv.stop()


def test_model_panel_loads_a_served_model_and_predicts(
    make_window, qtbot, small_manifest: Path, server
):
    srv, url = server
    win = make_window()
    panel = win.model_panel
    win.session.open_manifest(small_manifest)
    panel.family_combo.setCurrentText("openai")
    assert "http://" in panel.location_edit.placeholderText()
    assert not panel.quant_combo.isEnabled() and panel.scoring_combo.isEnabled()
    assert panel.scoring_combo.isVisible() and panel.prompt_combo.isVisible()
    panel.location_edit.setText(f"{url}#tiny/remote")
    panel.scoring_combo.setCurrentText("continuation")
    before = srv.stats.chat_requests
    panel.load_button.click()
    qtbot.waitUntil(lambda: win.session.model_spec == f"openai:{url}#tiny/remote",
                    timeout=READY_TIMEOUT_MS)  # fmt: skip
    assert "model=tiny/remote" in panel.state_label.text()
    assert "scoring=continuation" in panel.state_label.text()
    qtbot.waitUntil(lambda: win.is_ready and win.session.prediction is not None,
                    timeout=READY_TIMEOUT_MS)  # fmt: skip
    pred = win.session.prediction
    assert abs(sum(pred.with_tokens.values()) - 1) < 1e-6
    assert srv.stats.chat_requests > before  # the prediction came from the server
    config = win.batch_panel.config()
    assert config.models == (f"openai:{url}#tiny/remote",) and config.scoring == "continuation"
    # back to a local family: the local controls come back
    panel.family_combo.setCurrentText("reference")
    assert panel.quant_combo.isEnabled() and not panel.scoring_combo.isEnabled()
    assert not panel.scoring_combo.isVisible()  # the rows go away for local families


def test_an_unreachable_server_is_reported_not_hung(make_window, qtbot):
    win = make_window()
    errors: list[str] = []
    win.session.error.connect(errors.append)
    panel = win.model_panel
    panel.family_combo.setCurrentText("openai")
    panel.location_edit.setText("http://127.0.0.1:9/v1")
    panel.load_button.click()
    qtbot.waitUntil(lambda: bool(errors), timeout=READY_TIMEOUT_MS)
    assert "http://127.0.0.1:9/v1" in errors[-1] and "\n" not in errors[-1]
    assert win.session.model is None or win.session.model_spec != "openai:http://127.0.0.1:9/v1"
