"""How fast eGeMAPS extraction is: one process, all cores, and cache hits.

Makes N synthetic 3 s clips (voice-like harmonic tones with vibrato and a
little noise), or uses the clips of ``assets/demo/manifest.csv`` with
``--demo``, then times three passes over them:

1. one process, no cache (per-clip time);
2. a process pool over all usable cores, writing a fresh cache (the first
   pool in a process also starts openSMILE's fork server), then the same
   without a cache once the fork server is warm;
3. the cached call again, now all cache hits.

Usage::

    .venv/bin/python benchmarks/features.py [-n 48] [--workers K] [--demo] [--json]
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

from cuelab.core.cues.features import FeatureCache, FeatureConfig, extract_many, extract_signal

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=48, help="synthetic clips (default 48)")
    parser.add_argument("--workers", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--demo", action="store_true", help="use assets/demo/manifest.csv")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
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
