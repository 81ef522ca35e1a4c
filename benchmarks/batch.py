"""What the full token protocol costs next to an audio-only pass, with a shared prefix.

Runs the batch engine (:func:`cuelab.core.runs.run_eval`) over the demo set
with a tiny random-weight Qwen2-Audio built offline (or ``--model SPEC``):

1. ``audio-only`` alone (the pass every study pays anyway);
2. the full protocol: audio-only, correct, conflict, shuffle and corrupt at
   five values of p, with three seeds for the random conditions, where each
   clip's variants share one encoded prefix (one ``score_labels`` call per
   clip);
3. the naive way on the first ``--naive-limit`` clips: one run per
   condition and seed, every variant and label a full forward pass
   (``prefix_reuse = False``), to show what the sharing saves. Its
   predictions are checked against run 2.

Times are of the scoring phase only (the model is loaded once and the
features are cached before timing). Prints per-clip times and the ratios;
``--json`` prints one JSON line.

Usage::

    .venv/bin/python benchmarks/batch.py [--all] [--limit N] [--naive-limit K]
        [--layers L] [--hidden H] [--model SPEC] [--device cpu|cuda] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cuelab.core.cues.feature_cache import FeatureCache
from cuelab.core.errors import Cancelled
from cuelab.core.jobs import JobControl, ProgressInfo
from cuelab.core.models.base import LoadOptions, ModelAdapter
from cuelab.core.runs import config_from_mapping, run_eval

DEMO_MANIFEST = Path(__file__).resolve().parent.parent / "assets" / "demo" / "manifest.csv"
SEEDS = [0, 1, 2]
GRID = [0.1, 0.2, 0.3, 0.5, 0.8]
PROTOCOL = ["audio-only", "correct", "conflict", "shuffle", *(f"corrupt:{p:g}" for p in GRID)]


class Timer(JobControl):
    """A JobControl that remembers when the scoring phase started and ended."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__(on_progress=self._tick)
        self.stop_after = stop_after
        self.start_t = 0.0
        self.end_t = 0.0
        self.items = 0

    def _tick(self, info: ProgressInfo) -> None:
        if info.message == "scoring":
            self.start_t = time.perf_counter()
        elif info.message != "features":
            self.end_t = time.perf_counter()
            self.items = info.done
            if self.stop_after is not None and info.done >= self.stop_after:
                self.cancel()

    @property
    def seconds(self) -> float:
        return max(0.0, self.end_t - self.start_t)


def timed_run(
    adapter: Any, out: Path, conditions: list[str], seeds: list[int], args: argparse.Namespace,
    limit: int | None, stop_after: int | None = None,
) -> tuple[float, int]:  # fmt: skip
    """Scoring seconds and clips of one run_eval with a preloaded adapter.

    ``stop_after`` cancels the run after that many clips (the plan, shuffle included,
    still covers the whole split, so the variants equal the full run's).
    """
    adapter.prefixes.clear() if hasattr(adapter, "prefixes") else None
    cfg = config_from_mapping(
        {
            "manifest": str(DEMO_MANIFEST),
            "split": None if args.all else "test",
            "models": [args.spec],
            "conditions": conditions,
            "seeds": seeds,
            "out": str(out),
            "limit": limit,
            "workers": 1,
            "labels": "iemocap",
        },
        base_dir=None,
    )
    timer = Timer(stop_after)
    with contextlib.suppress(Cancelled):  # the naive baseline stops after a few clips
        run_eval(cfg, control=timer, cache=args.cache, loader=lambda spec, opts: adapter)
    return timer.seconds, timer.items


def predictions(folder: Path) -> dict[tuple[str, str, str], list[float]]:
    with open(folder / "predictions.csv", encoding="utf-8", newline="") as fh:
        return {
            (r["utt_id"], r["condition"], r["seed"]): [float(r[f"p_{k}"]) for k in ("angry", "happy", "neutral", "sad")]
            for r in csv.DictReader(fh)
        }  # fmt: skip


def distinct_variants(folder: Path) -> float:
    per_clip: dict[str, set[str]] = {}
    with open(folder / "predictions.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            per_clip.setdefault(r["utt_id"], set()).add(r["tokens"])
    return sum(len(v) for v in per_clip.values()) / max(1, len(per_clip))


def load(args: argparse.Namespace, work: Path) -> ModelAdapter:
    from cuelab.core.models.registry import load_model

    if args.model is None:
        from cuelab.core.models import tiny

        folder = tiny.build_qwen2_audio(work / "tiny", layers=args.layers, hidden=args.hidden)
        args.spec = f"qwen2-audio:{folder}"
    else:
        args.spec = args.model
    adapter = load_model(args.spec, LoadOptions(quant=args.quant, device=args.device))
    adapter.unload = lambda: None  # type: ignore[method-assign]  # reused across runs
    return adapter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--all", action="store_true", help="all 96 demo clips (default: test split)"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N clips only")
    parser.add_argument("--naive-limit", type=int, default=2, help="clips for the naive baseline")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--model", default=None, help="a model SPEC instead of the tiny one")
    parser.add_argument("--quant", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cuelab-bench-") as tmp:
        work = Path(tmp)
        args.cache = FeatureCache(work / "cache")
        adapter = load(args, work)
        # Warm-up (features into the cache, first-call overheads) on two clips.
        timed_run(adapter, work / "warm", ["audio-only", "correct"], [0], args, 2)
        t_audio, clips = timed_run(adapter, work / "audio", ["audio-only"], [0], args, args.limit)
        t_proto, _ = timed_run(adapter, work / "proto", PROTOCOL, SEEDS, args, args.limit)
        variants = distinct_variants(work / "proto")
        adapter.prefix_reuse = False  # type: ignore[attr-defined]
        t_naive, max_diff = 0.0, 0.0
        shared = predictions(work / "proto")
        for cond in PROTOCOL:
            seeds = SEEDS if cond == "shuffle" or cond.startswith("corrupt") else [0]
            for seed in seeds:
                out = work / f"naive-{cond.replace(':', '_')}-{seed}"
                t, _ = timed_run(adapter, out, [cond], [seed], args, args.limit, args.naive_limit)
                t_naive += t
                for key, probs in predictions(out).items():
                    max_diff = max(max_diff, *(abs(a - b) for a, b in zip(probs, shared[key])))
    naive_clips = min(args.naive_limit, clips)
    audio_s, proto_s, naive_s = t_audio / clips, t_proto / clips, t_naive / naive_clips
    result = {
        "model": args.model or f"tiny qwen2-audio ({args.layers} layers, hidden {args.hidden})",
        "device": args.device, "quant": args.quant, "clips": clips,
        "variants_per_clip": round(variants, 2), "conditions_x_seeds": 3 + 6 * 3,
        "audio_only_s_per_clip": round(audio_s, 4), "protocol_s_per_clip": round(proto_s, 4),
        "naive_s_per_clip": round(naive_s, 4), "naive_clips": naive_clips,
        "protocol_over_audio_only": round(proto_s / audio_s, 3),
        "naive_over_audio_only": round(naive_s / audio_s, 3),
        "naive_over_protocol": round(naive_s / proto_s, 3),
        "max_prob_diff_shared_vs_naive": max_diff, "host": platform.node(),
        "python": sys.version.split()[0],
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
