"""What each audio edit costs: milliseconds of compute per second of audio, per engine.

Times :func:`cuelab.core.audio.edit_engines.apply_edit` on demo clips (16 kHz),
after one warm-up call per edit, as the median over ``--repeats`` passes of
the whole set; also the measurement (:func:`measure_edit`, both trackers' F0
plus LPC formants) and the edit → prediction path of the window (edit, eGeMAPS
of the edited audio, reference model) on a 5 s clip made by joining demo clips.

Usage::

    .venv/bin/python benchmarks/edits.py [--clips N] [--repeats R] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from cuelab.core.audio.edit_engines import analyse_world, apply_edit
from cuelab.core.audio.edit_measure import measure_edit
from cuelab.core.audio.edits import PRAAT_KINDS, parse_edit
from cuelab.core.audio.io import load_audio

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
EDITS = [
    "resynth", "pitch=+2st", "pitch-range=0.5", "tempo=1.2", "formant=1.1", "jitter=2%",
    "shimmer=2%", "breathiness=+6dB", "gain=-6dB", "loudness=-23LUFS", "tilt=-3dB/oct",
]  # fmt: skip


def _clips(n: int) -> list[np.ndarray]:
    paths = sorted(DEMO.glob("*.flac"))[:: max(1, 96 // n)][:n]
    return [load_audio(p, 16000)[0] for p in paths]


def _time_edit(clips: list[np.ndarray], edit: str, engine: str, repeats: int) -> float:
    """Median ms per second of audio."""
    seconds = sum(c.size for c in clips) / 16000
    apply_edit(clips[0], 16000, edit, engine)  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for c in clips:
            apply_edit(c, 16000, edit, engine)
        runs.append((time.perf_counter() - t0) * 1000 / seconds)
    return statistics.median(runs)


def _window_latency(repeats: int) -> dict[str, float]:
    """Edit → features → reference prediction on a 5 s clip (what the panel does per change)."""
    from cuelab.core.cues.concepts import concepts_for_features
    from cuelab.core.cues.extract import extract_signal
    from cuelab.core.models.base import Clip, LoadOptions
    from cuelab.core.models.registry import load_model
    from cuelab.core.tasks.emotion import parse_labels
    from cuelab.core.tasks.prompts import load_task

    parts = [load_audio(p, 16000)[0] for p in sorted(DEMO.glob("spk04_m_*.flac"))[:4]]
    x = np.concatenate(parts)[: 5 * 16000]  # joined demo clips, cut to 5 s
    model = load_model("reference", LoadOptions())
    labels = parse_labels("iemocap")
    task = load_task("ser", labels=labels)
    out: dict[str, float] = {"seconds": x.size / 16000}
    analysis = analyse_world(x, 16000)
    for name, reuse in (("fresh", None), ("analysed", analysis)):
        times = []
        for k in range(repeats + 1):
            t0 = time.perf_counter()
            y = apply_edit(x, 16000, f"pitch=+{1 + k % 3}st,tempo=1.1", analysis=reuse)
            feats = extract_signal(y, 16000)
            text = concepts_for_features(feats).text()
            model.score_labels(Clip(audio=y, sr=16000, features=feats), task, labels, [text])
            if k:
                times.append((time.perf_counter() - t0) * 1000)
        out[f"{name}_median_ms"] = statistics.median(times)
        out[f"{name}_max_ms"] = max(times)
    t0 = time.perf_counter()
    analyse_world(x, 16000)
    out["analysis_ms"] = (time.perf_counter() - t0) * 1000
    model.unload()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    clips = _clips(args.clips)
    seconds = sum(c.size for c in clips) / 16000
    results: dict[str, dict[str, float | None]] = {}
    for edit in EDITS:
        chain = parse_edit(edit)
        praat_ok = all(e.kind in PRAAT_KINDS or not e.needs_engine for e in chain.edits)
        results[edit] = {
            "world": _time_edit(clips, edit, "world", args.repeats),
            "praat": _time_edit(clips, edit, "praat", args.repeats) if praat_ok else None,
        }
    y = [apply_edit(c, 16000, "pitch=+2st") for c in clips]
    measure = {}
    for tracker in ("praat", "pyin"):
        measure_edit(clips[0], y[0], 16000, tracker)
        t0 = time.perf_counter()
        for c, e in zip(clips, y):
            measure_edit(c, e, 16000, tracker)
        measure[tracker] = (time.perf_counter() - t0) * 1000 / seconds
    window = _window_latency(max(5, args.repeats * 3))
    if args.json:
        print(json.dumps({"edits": results, "measure": measure, "window": window,
                          "audio_s": seconds, "host": platform.node()}))  # fmt: skip
        return
    print(f"{len(clips)} demo clips, {seconds:.1f} s of audio; ms per second of audio")
    print(f"{'edit':<18}{'world':>8}{'praat':>8}")
    for edit, r in results.items():
        praat = "-" if r["praat"] is None else f"{r['praat']:.0f}"
        print(f"{edit:<18}{r['world']:>8.0f}{praat:>8}")
    print(f"measurement: praat tracker {measure['praat']:.0f}, pyin {measure['pyin']:.0f} ms/s")
    print(f"edit -> prediction ({window['seconds']:.1f} s clip, pitch+tempo, reference model):")
    print(f"  analysing each time: median {window['fresh_median_ms']:.0f} ms, "
          f"max {window['fresh_max_ms']:.0f} ms")  # fmt: skip
    print(f"  clip analysed once ({window['analysis_ms']:.0f} ms): median "
          f"{window['analysed_median_ms']:.0f} ms, max {window['analysed_max_ms']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
