"""Where a tiny-model demo eval spends its time, and what threads and feature workers do.

One eval = ``run_eval`` + the report, in this process, on the demo clips with a
tiny random Qwen2-Audio (``cuelab/core/models/tiny.py``) and a fresh feature
cache (so features are really extracted). Phases are wall-clock spans taken
from the progress callbacks and a timing wrapper around the model loader:
features (first to last feature progress), load, scoring (first to last scored
clip) and report. With overlap the spans overlap; ``total`` is the whole eval.

Modes:

- ``phases``: one eval, printed as phases. Run it with ``PYTHONPATH`` pointing
  at an older tree to get that tree's "before" (``git archive BASE | tar -x -C DIR``);
  the script only uses what both trees have (``--plots-report`` draws the plots the
  old ``eval`` drew by default).
- ``threads``: evals with torch threads = the default policy, 1, and every core,
  alternated, ``--repeats`` times each; predictions must be identical.
- ``workers``: feature extraction of ``--clips`` clips with 1, 2 and ``auto`` workers
  (``extract_many``, fresh cache each time), alternated; ``--load N`` runs N busy
  processes meanwhile (a controlled "loaded" machine). The ambient load average
  before is printed too: other users' processes count as well.

    .venv/bin/python benchmarks/eval_phases.py phases [--limit 12] [--conditions ...]
    .venv/bin/python benchmarks/eval_phases.py threads [--repeats 3]
    .venv/bin/python benchmarks/eval_phases.py workers [--clips 50] [--repeats 3] [--load N]
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "manifest.csv"
# 12 conditions (one seed): the protocol of the demo eval
PROTOCOL = (
    "audio-only,correct,conflict,shuffle,corrupt:0.2,corrupt:0.4,corrupt:0.6,corrupt:0.8,"
    "corrupt:1,ablate:PITCH,ablate:ENERGY,invert:PITCH"
)


def one_eval(model: Path, limit: int, conditions: str, plots: bool, out: Path) -> dict[str, Any]:
    """Run one eval + report and return its phase spans (seconds from the start)."""
    from cuelab.core.cues import FeatureCache
    from cuelab.core.jobs import JobControl, ProgressInfo
    from cuelab.core.models.registry import load_model
    from cuelab.core.reports.build import build_report
    from cuelab.core.runs import config_from_mapping, run_eval

    t0 = time.perf_counter()
    marks: dict[str, list[float]] = {"features": [], "scoring": [], "load": []}

    def on_progress(info: ProgressInfo) -> None:
        now = time.perf_counter() - t0
        if info.message == "features":
            marks["features"].append(now)
        elif info.message.startswith("qwen2-audio"):
            marks["scoring"].append(now)

    def loader(spec: str, options: Any) -> Any:
        marks["load"].append(time.perf_counter() - t0)
        adapter = load_model(spec, options)
        marks["load"].append(time.perf_counter() - t0)
        return adapter

    config = config_from_mapping(
        {"manifest": str(DEMO), "models": [f"qwen2-audio:{model}"], "conditions": conditions,
         "out": str(out), "limit": limit, "bootstrap": 200, "quant": "fp32", "device": "cpu",
         "labels": ["angry", "happy", "neutral", "sad"]},
        base_dir=None,
    )  # fmt: skip
    kwargs: dict[str, Any] = {"control": JobControl(on_progress=on_progress), "loader": loader}
    kwargs["cache"] = FeatureCache(out.parent / f"{out.name}-cache")
    if "stream_features" in inspect.signature(run_eval).parameters:
        kwargs["stream_features"] = True  # what the command line does
    run_eval(config, **kwargs)
    r0 = time.perf_counter() - t0
    build_report(out, plots=plots)
    r1 = time.perf_counter() - t0
    spans = {k: (v[0], v[-1]) for k, v in marks.items() if v}
    spans["report"] = (r0, r1)
    out_spans = {k: [round(a, 3), round(b, 3)] for k, (a, b) in spans.items()}
    return {"total_s": round(r1, 3), "spans": out_spans,
            "durations": {k: round(b - a, 3) for k, (a, b) in spans.items()}}  # fmt: skip


def _model(folder: Path) -> Path:
    from cuelab.core.models import tiny

    return tiny.build_qwen2_audio(folder)


def phases(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(Path(tmp) / "model")
        one_eval(model, 2, "audio-only", False, Path(tmp) / "warm")  # imports, first calls
        result = one_eval(model, args.limit, args.conditions, args.plots_report,
                          Path(tmp) / "run")  # fmt: skip
    import torch

    result["torch_threads"] = torch.get_num_threads()
    return result


def _child(model: Path, out: Path, env_threads: str | None, args: argparse.Namespace) -> float:
    """One eval in a fresh process (torch's thread pool is per process)."""
    import os

    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("CUELAB_THREADS", None)
    if env_threads is not None:
        env["CUELAB_THREADS"] = env_threads
    code = (
        f"import sys, json; sys.path.insert(0, {str(REPO)!r}); "
        "from benchmarks.eval_phases import one_eval; from pathlib import Path; "
        f"r = one_eval(Path({str(model)!r}), {args.limit}, {args.conditions!r}, False, "
        f"Path({str(out)!r})); import torch; r['threads'] = torch.get_num_threads(); "
        "print(json.dumps(r))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, cwd=REPO)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def threads(args: argparse.Namespace) -> dict[str, Any]:
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    settings = {"default": None, "1 thread": "1", f"all cores ({cores})": str(cores)}
    times: dict[str, list[float]] = {k: [] for k in settings}
    chosen: dict[str, list[int]] = {k: [] for k in settings}
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(Path(tmp) / "model")
        preds: dict[str, bytes] = {}
        for rep in range(args.repeats):
            names = list(settings) if rep % 2 == 0 else list(reversed(settings))
            for name in names:
                out = Path(tmp) / f"{rep}-{name.split()[0]}"
                r = _child(model, out, settings[name], args)
                times[name].append(r["total_s"] - r["durations"]["report"])
                chosen[name].append(r["threads"])
                body = (out / "predictions.csv").read_bytes()
                assert preds.setdefault("first", body) == body, "predictions differ"
    load = os.getloadavg()
    return {
        "load_average": [round(x, 2) for x in load],
        "repeats": args.repeats,
        "median_s": {k: round(statistics.median(v), 2) for k, v in times.items()},
        "range_s": {k: [round(min(v), 2), round(max(v), 2)] for k, v in times.items()},
        "threads_used": chosen,
    }


def _busy(n: int) -> list[subprocess.Popen[bytes]]:
    """``n`` processes that each keep one core busy: a controlled "loaded machine".

    Each in its own session, as another user's program would be: Linux schedules a
    session's processes as one group (autogroup), so busy processes in this session
    would only compete with the measured ones inside its own share.
    """
    code = "while True: pass"
    return [
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True) for _ in range(n)
    ]


def workers(args: argparse.Namespace) -> dict[str, Any]:
    """1 / 2 / auto feature workers, alternated, with ``--load`` busy processes beside.

    Runs against whichever ``cuelab`` is on the path (``PYTHONPATH=OLD_TREE`` for a
    "before"). What auto ran is read from the progress line (its last note), and, where
    the tree logs it, how the clips were shared between this process and its helpers.
    """
    import logging
    import os

    import numpy as np
    import soundfile as sf

    from cuelab.core.cues import FeatureCache, extract_many
    from cuelab.core.jobs import JobControl, ProgressInfo

    shares: list[str] = []

    class _Shares(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("shared queue"):
                shares.append(record.getMessage())

    logger = logging.getLogger("cuelab.core.cues.workers")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(_Shares())
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"1": [], "2": [], "auto": []}
    notes: dict[str, list[str]] = {k: [] for k in times}
    ambient = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.clips):
            t = np.arange(int(args.seconds * 16000)) / 16000
            x = 0.2 * np.sin(2 * np.pi * (110 + 3 * i) * t) + 0.01 * rng.standard_normal(t.size)
            path = Path(tmp) / f"c{i:03d}.wav"
            sf.write(path, x.astype(np.float32), 16000)
            paths.append(path)
        extract_many(paths[:1], workers=1)  # openSMILE set-up in this process
        busy = _busy(args.load)
        try:
            time.sleep(1.0 if args.load else 0.0)  # let the load take the cores
            for rep in range(args.repeats):
                names = list(times) if rep % 2 == 0 else list(reversed(times))
                for name in names:
                    cache = FeatureCache(Path(tmp) / f"cache-{rep}-{name}")
                    seen: list[str] = []

                    def on_progress(info: ProgressInfo, seen: list[str] = seen) -> None:
                        seen.append(info.message)

                    n = None if name == "auto" else int(name)
                    logged = len(shares)
                    start = time.perf_counter()
                    extract_many(paths, cache=cache, workers=n, control=JobControl(on_progress))
                    times[name].append(time.perf_counter() - start)
                    notes[name].append(seen[-1] if seen else "")
                    if name != "auto":
                        del shares[logged:]  # only auto's split is reported
        finally:
            for proc in busy:
                proc.terminate()
                proc.wait()
    medians = {k: statistics.median(v) for k, v in times.items()}
    best = min(medians.values())
    return {
        "clips": args.clips, "seconds": args.seconds, "load": args.load, "cores": os.cpu_count(),
        "ambient_load_average_before": ambient,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "median_s": {k: round(v, 2) for k, v in medians.items()},
        "range_s": {k: [round(min(v), 2), round(max(v), 2)] for k, v in times.items()},
        "auto_vs_best": round(medians["auto"] / best, 3),
        # the same, repeat by repeat (settings of one repeat run back to back): steadier
        # than the medians where other users' load drifts during the measurement
        "auto_vs_best_paired_median": round(statistics.median(
            a / min(o, t) for a, o, t in zip(times["auto"], times["1"], times["2"])), 3),
        "auto_ran": notes["auto"], "auto_split": shares,
    }  # fmt: skip


def main() -> int:
    """Parse the mode, run it, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("phases", "threads", "workers"))
    parser.add_argument("--limit", type=int, default=12, help="demo clips per eval")
    parser.add_argument("--conditions", default=PROTOCOL)
    parser.add_argument("--plots-report", action="store_true", help="report with plots")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=50, help="workers mode: clips")
    parser.add_argument("--seconds", type=float, default=3.0, help="workers mode: clip length")
    parser.add_argument(
        "--load", type=int, default=0, help="workers mode: busy processes run beside (0: none)"
    )
    args = parser.parse_args()
    result = {"phases": phases, "threads": threads, "workers": workers}[args.mode](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
