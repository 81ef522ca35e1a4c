"""Prefix-cache reuse against naive full passes on a small random Qwen2-Audio.

K token variants of one 10 s clip, scored over the IEMOCAP labels: the naive
path runs one full forward (audio encoder included) per variant x label; the
cached path encodes audio + instruction once and scores every continuation as
a suffix. Prints the timings, their ratio and the largest difference of the
summed label log-probabilities (fp32).

    .venv/bin/python benchmarks/prefix_cache.py [--json] [--layers 8] [--hidden 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOKENS = [
    "ENERGY=HIGH PITCH=LOW BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=LOW PITCH=HIGH BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=MID PITCH=MID BRIGHTNESS=HIGH DYNAMICS=DYNAMIC FORMANTS=LOW VOICE_QUALITY=BREATHY",
    "ENERGY=HIGH PITCH=HIGH BRIGHTNESS=LOW DYNAMICS=STATIC FORMANTS=HIGH VOICE_QUALITY=PRESSED",
    "ENERGY=LOW PITCH=LOW BRIGHTNESS=LOW DYNAMICS=DYNAMIC FORMANTS=MID VOICE_QUALITY=CREAKY",
    "ENERGY=MID PITCH=LOW BRIGHTNESS=HIGH DYNAMICS=STATIC FORMANTS=LOW VOICE_QUALITY=MODAL",
    "ENERGY=HIGH PITCH=MID BRIGHTNESS=MID DYNAMICS=DYNAMIC FORMANTS=HIGH VOICE_QUALITY=MODAL",
    "ENERGY=LOW PITCH=MID BRIGHTNESS=LOW DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=BREATHY",
]


def _clip(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    tone = np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def main() -> int:
    """Build the model, time both paths, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2, help="best of N timings")
    args = parser.parse_args()

    import torch

    from cuelab.core.models import tiny
    from cuelab.core.models.base import Clip, LoadOptions
    from cuelab.core.models.registry import load_model
    from cuelab.core.tasks.prompts import load_task

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny.build_qwen2_audio(Path(tmp), layers=args.layers, hidden=args.hidden)
        adapter = load_model(f"qwen2-audio:{folder}", LoadOptions(quant="fp32"))
    clip = Clip(_clip(args.seconds), 16000, "bench")
    task = load_task("ser")
    variants = [TOKENS[i % len(TOKENS)] for i in range(args.variants)]

    def timed(reuse: bool) -> tuple[float, np.ndarray]:
        best, result = float("inf"), np.zeros(0)
        for _ in range(args.repeats):
            adapter.prefix_reuse = reuse
            adapter.prefixes.clear()
            start = time.perf_counter()
            result = np.array(adapter.label_logprobs(clip, task, task.labels, variants))
            best = min(best, time.perf_counter() - start)
        return best, result

    timed(True)  # warm-up (allocator, kernels)
    naive_s, naive = timed(False)
    cached_s, cached = timed(True)
    figures = {
        "naive_s": round(naive_s, 4),
        "cached_s": round(cached_s, 4),
        "ratio": round(cached_s / naive_s, 4),
        "max_abs_diff": float(np.abs(naive - cached).max()),
        "variants": args.variants,
        "labels": len(task.labels),
        "layers": args.layers,
        "hidden": args.hidden,
        "seconds": args.seconds,
        "threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>13}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
