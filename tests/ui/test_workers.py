"""Job slots: one job at a time, stale results dropped, the GUI thread never stalls."""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QThreadPool, QTimer

from cuelab.core.cues.tokens import VOCAB
from cuelab.ui.workers import Debouncer, JobSlot


def test_a_newer_job_makes_the_older_result_stale(qtbot):
    pool = QThreadPool()
    slot = JobSlot("test", pool)
    gate, running = threading.Event(), threading.Event()
    got = []

    def slow(job):
        running.set()
        gate.wait(5)  # ignores cancellation, like a model call in progress
        return "old"

    slot.start(slow, lambda v, _s: got.append(v))
    assert running.wait(5)
    slot.start(lambda job: "new", lambda v, _s: got.append(v))
    qtbot.waitUntil(lambda: got == ["new"], timeout=5000)
    gate.set()
    qtbot.waitUntil(lambda: not slot.busy, timeout=5000)
    assert got == ["new"] and slot.dropped == 1
    assert pool.waitForDone(2000)


def test_cancel_reaches_the_worker_and_errors_are_reported(qtbot):
    pool = QThreadPool()
    slot = JobSlot("test", pool)
    seen = []

    def loop(job):
        while True:
            job.check()  # raises Cancelled once replaced
            time.sleep(0.005)

    slot.start(loop, lambda v, _s: seen.append(v))
    with qtbot.waitSignal(slot.failed, timeout=5000) as blocker:
        slot.start(lambda job: 1 / 0, lambda v, _s: seen.append(v))
    assert "ZeroDivisionError" in blocker.args[0]
    qtbot.waitUntil(lambda: not slot.busy, timeout=5000)
    assert seen == []


def test_debouncer_fires_once_after_a_burst(qtbot):
    calls = []
    d = Debouncer(50, lambda: calls.append(1))
    for _ in range(10):
        d.trigger()
    qtbot.waitUntil(lambda: calls == [1], timeout=2000)
    qtbot.wait(120)
    assert calls == [1]


def test_rapid_edits_give_one_prediction_for_the_last_tokens(ready_window, qtbot):
    s = ready_window.session
    got = []
    s.prediction_changed.connect(got.append)
    chips = ready_window.concepts_panel
    for token in VOCAB["ENERGY"]:  # a burst of five edits inside the debounce window
        chips.choose("ENERGY", token)
    qtbot.waitUntil(lambda: len(got) >= 1, timeout=10_000)
    qtbot.wait(400)
    assert len(got) == 1
    assert got[0].token_text == s.tokens.text() and "ENERGY=VERY_HIGH" in got[0].token_text


def test_older_prediction_is_dropped_when_a_newer_one_starts(ready_window, qtbot):
    s = ready_window.session
    got = []
    s.prediction_changed.connect(got.append)
    slot = s.slots["predict"]
    dropped = slot.dropped
    s.set_tokens(s.tokens.replace(ENERGY="VERY_LOW"))
    s._predict_debounce.flush()  # job 1 starts now
    s.set_tokens(s.tokens.replace(ENERGY="MID"))
    s._predict_debounce.flush()  # job 2 replaces it
    qtbot.waitUntil(lambda: not slot.busy and len(got) >= 1, timeout=10_000)
    qtbot.wait(100)
    assert [u.token_text for u in got] == [s.tokens.text()]
    assert "ENERGY=MID" in got[0].token_text
    # Job 1 either was cancelled before it ran or its answer was dropped.
    assert slot.dropped >= dropped


class _TickCounter:
    """A 10 ms timer on the GUI thread, counting its ticks."""

    def __init__(self) -> None:
        self.ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.ticks += 1


def test_the_gui_thread_runs_while_a_model_loads_and_while_it_scores(
    make_window, qtbot, small_manifest, monkeypatch
):
    """Loading (and reloading) a model and scoring a token edit happen in workers: while
    each is held at a gate, the GUI thread's timer keeps firing. On the GUI thread the
    gate would never open. (How long the window stalls is measured in
    benchmarks/gui_stalls.py, not asserted here.)"""
    import cuelab.core.models as models

    real_load = models.load_model
    gate, entered = threading.Event(), threading.Event()
    loaders: list[int] = []

    def gated_load(spec, options):
        loaders.append(threading.get_ident())
        entered.set()
        assert gate.wait(30), "the gate was never opened: the load blocked the GUI thread"
        return real_load(spec, options)

    monkeypatch.setattr(models, "load_model", gated_load)
    win = make_window()
    s = win.session
    with qtbot.waitSignal(s.tokens_changed, timeout=60_000):
        s.open_manifest(small_manifest)
    counter = _TickCounter()
    for _reload in range(2):  # a first load, then a reload while the window is live
        gate.clear()
        entered.clear()
        with qtbot.waitSignal(s.model_changed, timeout=60_000):
            s.load_model("reference")
            qtbot.waitUntil(entered.is_set, timeout=10_000)
            before = counter.ticks
            qtbot.waitUntil(lambda b=before: counter.ticks >= b + 5, timeout=10_000)
            gate.set()
    assert loaders and threading.get_ident() not in loaders
    qtbot.waitUntil(lambda: win.is_ready, timeout=60_000)
    gated = _GatedModel(s.model)
    s.model = gated
    token = "HIGH" if s.tokens["PITCH"] != "HIGH" else "LOW"
    with qtbot.waitSignal(s.prediction_changed, timeout=30_000):
        win.concepts_panel.choose("PITCH", token)
        qtbot.waitUntil(gated.entered.is_set, timeout=10_000)
        before = counter.ticks
        qtbot.waitUntil(lambda: counter.ticks >= before + 5, timeout=10_000)
        gated.gate.set()
    counter.timer.stop()
    assert s.prediction is not None and s.tokens["PITCH"] == token


class _GatedModel:
    """The real adapter, but ``score_labels`` waits until the test opens the gate."""

    def __init__(self, adapter) -> None:
        self._adapter = adapter
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name):
        return getattr(self._adapter, name)

    def score_labels(self, *args, **kwargs):
        self.entered.set()
        self.gate.wait(10)
        return self._adapter.score_labels(*args, **kwargs)


def test_a_prediction_for_the_previous_clip_is_not_shown_after_a_clip_change(ready_window, qtbot):
    s = ready_window.session
    gated = _GatedModel(s.model)
    s.model = gated
    s.set_tokens(s.tokens.replace(ENERGY="VERY_LOW"))
    s._predict_debounce.flush()  # a prediction for the first clip is now in the model
    qtbot.waitUntil(gated.entered.is_set, timeout=10_000)
    old_key = s.clip_key
    shown = []
    s.prediction_changed.connect(lambda u: shown.append(u.clip_key))
    rng = np.random.default_rng(0)
    s.set_audio(0.1 * rng.standard_normal(16000).astype(np.float32), 16000, "another clip")
    gated.gate.set()  # the old answer arrives long before the new clip's (debounced) one
    qtbot.waitUntil(lambda: len(shown) >= 1, timeout=30_000)
    assert old_key not in shown
    assert shown[0] == "another clip" == s.prediction.clip_key
    assert ready_window.predictions_panel.last.clip_key == "another clip"
