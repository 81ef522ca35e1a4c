"""How fast eGeMAPS extraction is: one process, all cores, and cache hits.

Makes N synthetic 3 s clips (voice-like harmonic tones with vibrato and a
little noise), or uses the clips of ``assets/demo/manifest.csv`` with
``--demo``, then times three passes over them:

1. one process, no cache (per-clip time);
2. a process pool over all usable cores, writing a fresh cache (the first
   pool in a process also starts openSMILE's fork server), then the same
   without a cache once the fork server is warm;
3. the cached call again, now all cache hits.

``--passes`` instead times openSMILE itself, side by side in one process:
CueLab's single run that yields the low-level descriptors and the
functionals together, against the ``opensmile`` package's one run per level
(what CueLab did before), and checks that both give the same numbers.

Usage::

    .venv/bin/python benchmarks/features.py [-n 48] [--workers K] [--demo] [--json]
    .venv/bin/python benchmarks/features.py --passes [--demo] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from cuelab.core.cues.extract import FeatureConfig, extract_signal
from cuelab.core.cues.feature_cache import FeatureCache
from cuelab.core.cues.feature_pool import extract_many

SR = 16000
DEMO_MANIFEST = Path(__file__).resolve().parent.parent / "assets" / "demo" / "manifest.csv"


def synth_clip(rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """A voice-like clip: random f0 with vibrato, 6 harmonics, pauses, noise."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(90, 280) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k**1.2 for k in range(1, 7))
    gate = (np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t) > -0.5).astype(float)
    x = rng.uniform(0.05, 0.3) * x * gate + 0.003 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def make_clips(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"clip{i:03d}.wav"
        sf.write(path, synth_clip(rng), SR)
        paths.append(path)
    return paths


def demo_clips() -> list[Path]:
    if not DEMO_MANIFEST.is_file():
        sys.exit(f"{DEMO_MANIFEST}: not found (drop --demo to use synthetic clips)")
    with DEMO_MANIFEST.open(newline="", encoding="utf-8") as fh:
        return [DEMO_MANIFEST.parent / row["path"] for row in csv.DictReader(fh)]


def timed(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def run(paths: list[Path], workers: int, cache_root: Path) -> dict[str, float | int | str]:
    config = FeatureConfig()
    # Warm-up: imports and openSMILE set-up in this process are one-off costs.
    extract_signal(np.zeros(SR, dtype=np.float32), SR, config)
    serial_s = timed(extract_many, paths, config, None, workers=1)
    cache = FeatureCache(cache_root)
    parallel_s = timed(extract_many, paths, config, cache, workers=workers)
    warm_s = timed(extract_many, paths, config, None, workers=workers)
    hit_s = timed(extract_many, paths, config, cache, workers=workers)
    n = len(paths)
    return {
        "clips": n,
        "workers": workers,
        "cpu": platform.processor() or platform.machine(),
        "per_clip_ms_1proc": 1000 * serial_s / n,
        "serial_s": serial_s,
        "parallel_s": parallel_s,
        "parallel_speedup": serial_s / parallel_s,
        "parallel_warm_s": warm_s,
        "parallel_warm_speedup": serial_s / warm_s,
        "cache_hit_s": hit_s,
        "cache_hit_per_clip_ms": 1000 * hit_s / n,
        "cache_hit_speedup": serial_s / hit_s,
    }


def compare_passes(paths: list[Path]) -> dict[str, float]:
    """One openSMILE run per clip (both levels) against two (one per level)."""
    import opensmile

    from cuelab.core.audio.io import load_audio
    from cuelab.core.cues.extract import _OnePass

    clips = [np.clip(load_audio(p, SR)[0], -1.0, 32767 / 32768) for p in paths]
    one = _OnePass("eGeMAPSv02")
    levels = (opensmile.FeatureLevel.LowLevelDescriptors, opensmile.FeatureLevel.Functionals)
    two = [opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=lv)
           for lv in levels]  # fmt: skip
    one(clips[0], SR), [s.process_signal(clips[0], SR) for s in two]  # warm both
    start = time.perf_counter()
    single = [one(x, SR) for x in clips]
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    double = [tuple(s.process_signal(x, SR) for s in two) for x in clips]
    double_s = time.perf_counter() - start
    diff = max(
        float(np.max(np.abs(a.to_numpy() - b.to_numpy())))
        for pair_a, pair_b in zip(single, double)
        for a, b in zip(pair_a, pair_b)
    )
    return {
        "clips": len(clips), "one_pass_s": single_s, "two_passes_s": double_s,
        "speedup": double_s / single_s, "max_abs_diff": diff,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=48, help="synthetic clips (default 48)")
    parser.add_argument("--workers", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--demo", action="store_true", help="use assets/demo/manifest.csv")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--passes", action="store_true", help="one openSMILE run vs two")
    args = parser.parse_args()
    if args.passes:
        with tempfile.TemporaryDirectory() as tmp:
            paths = demo_clips() if args.demo else make_clips(Path(tmp), args.n)
            res = compare_passes(paths)
        if args.json:
            print(json.dumps(res))
        else:
            print(f"clips: {res['clips']}; one run (LLD + functionals): {res['one_pass_s']:.2f} s; "
                  f"one run per level: {res['two_passes_s']:.2f} s; speed-up "
                  f"{res['speedup']:.2f}x; max abs difference {res['max_abs_diff']:g}")  # fmt: skip
        return 0
    workers = args.workers or len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = demo_clips() if args.demo else make_clips(folder, args.n)
        res = run(paths, workers, folder / "cache")
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"clips: {res['clips']} ({'demo' if args.demo else 'synthetic 3 s'})")
    print(f"one process:   {res['serial_s']:.2f} s  ({res['per_clip_ms_1proc']:.1f} ms per clip)")
    print(
        f"{workers} processes: {res['parallel_s']:.2f} s  "
        f"(speed-up {res['parallel_speedup']:.2f}x, first pool: fork-server start included)"
    )
    print(
        f"{workers} processes: {res['parallel_warm_s']:.2f} s  "
        f"(speed-up {res['parallel_warm_speedup']:.2f}x, warm fork server)"
    )
    print(
        f"cache hits:    {res['cache_hit_s']:.3f} s  ({res['cache_hit_per_clip_ms']:.2f} ms per "
        f"clip, speed-up {res['cache_hit_speedup']:.0f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
