"""Export from the window (WAV, CSV) and the full prompt, checked against the analysis."""

from __future__ import annotations

import csv

import numpy as np
import soundfile as sf
from PySide6.QtGui import QGuiApplication

from tests.ui.test_clip_selection import SR, tone


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_curves_and_concepts_csv_hold_the_analysis_values(make_window, qtbot, tmp_path):
    from cuelab.ui.dsp import intensity_db

    win = make_window()
    session, view = win.session, win.clip_view
    x = tone()
    session.set_audio(x, SR, "tone")
    qtbot.waitUntil(lambda: session.concepts is not None, timeout=30_000)
    qtbot.waitUntil(lambda: view.tools.intensity is not None, timeout=10_000)
    view.set_selection(0.5, 2.5)  # the curves are the selection's, at its own times
    qtbot.waitUntil(lambda: session.concepts is not None, timeout=30_000)

    out = win.exports.export_curves(tmp_path / "curves.csv")
    rows = read_csv(out)
    feats = session.features
    assert len(rows) == len(feats.f0_semitones) > 100
    _t, db = intensity_db(x, SR)
    for k, (row, st) in enumerate(zip(rows, feats.f0_semitones, strict=True)):
        t = 0.5 + k * feats.frame_hop_s
        assert abs(float(row["time_s"]) - t) < 1e-3
        if st > 0:
            assert abs(float(row["f0_hz"]) - 27.5 * 2 ** (st / 12)) < 1e-3
        else:
            assert row["f0_hz"] == ""  # unvoiced
        assert abs(float(row["intensity_db"]) - db[round(t / 0.01)]) < 1e-3
    voiced = [float(r["f0_hz"]) for r in rows if r["f0_hz"]]
    assert voiced and abs(np.median(voiced) - 180) < 10

    rows = read_csv(win.exports.export_concepts(tmp_path / "concepts.csv"))
    c = session.concepts
    assert [r["concept"] for r in rows] == list(dict.fromkeys([*c.scores, *c.tokens]))
    for row in rows:
        score = c.scores.get(row["concept"])
        if score is not None and np.isfinite(score):
            assert abs(float(row["score"]) - score) < 1e-6
        assert row["token"] == c.tokens.get(row["concept"], "")


def test_audio_export_writes_the_clip_the_mix_and_its_stems(ready_window, qtbot, tmp_path):
    win = ready_window
    mixer = win.mixer_panel
    assert mixer is not None
    win.tabs.setCurrentIndex(win.tabs.indexOf(mixer.parentWidget().parentWidget()))
    qtbot.waitUntil(lambda: mixer.mix is not None, timeout=30_000)
    paths = win.exports.export_audio(tmp_path / "out")
    names = sorted(p.name for p in paths)
    stem = win.session.clip_name.rsplit(".", 1)[0]
    assert names == sorted(
        [f"{stem}.wav", f"{stem}_mix.wav", f"{stem}_speech.wav", f"{stem}_background.wav"]
    )
    clip, sr = sf.read(tmp_path / "out" / f"{stem}.wav", dtype="float32")
    assert sr == win.session.sr and np.array_equal(clip, win.session.audio)
    r = mixer.mix.result
    for what, x in (("mix", r.mix), ("speech", r.speech_stem), ("background", r.background_stem)):
        got, sr = sf.read(tmp_path / "out" / f"{stem}_{what}.wav", dtype="float32")
        assert sr == r.sr and np.array_equal(got, x)


def test_the_prompt_dialog_shows_what_the_adapter_received(ready_window, qtbot):
    from cuelab.ui.clip_export import prompt_document

    win = ready_window
    session = win.session
    adapter = session.model
    received = []
    real = adapter.score_labels

    def recording(clip, task, labels, token_texts):  # the real adapter answers
        received.append((task, list(labels), list(token_texts)))
        return real(clip, task, labels, token_texts)

    adapter.score_labels = recording
    with qtbot.waitSignal(session.prediction_changed, timeout=30_000):
        session.request_prediction()
    task, labels, texts = received[-1]
    assert texts[0] is None and texts[1]  # audio only, then with the tokens
    dialog = win.exports.show_prompt()
    expected = prompt_document(
        [("audio only", task.render(labels, None)), ("with tokens", task.render(labels, texts[1]))]
    )
    assert dialog.text_edit.toPlainText() == expected
    assert texts[1] in expected and dialog.text_edit.isReadOnly()
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == expected
