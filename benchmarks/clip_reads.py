"""How often an eval opens each clip file, and what reading it once saves.

Copies the demo clips (real files, so the kernel's ``IN_OPEN`` events name them),
then runs ``run_eval`` (reference and oracle models, audio-only and correct) with
``--workers 1`` on a cold feature cache and then, ``--repeats`` times, on the warm
cache; each run's opens of the clip files are counted with inotify (every process,
libsndfile's C opens included; ``tests/open_counter.py``), and warm runs are timed
(wall and this process's CPU time, which other load on the machine disturbs less).
An SSEU eval (two oracle specs) is counted too. Point ``PYTHONPATH`` at an older
tree for its "before" (the script uses only what both trees have).

    .venv/bin/python benchmarks/clip_reads.py [--limit 48] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "tests"))  # the counter the tests use; cuelab from PYTHONPATH

from open_counter import OpenCounter  # noqa: E402


def _copy_demo(folder: Path, limit: int) -> Path:
    import csv

    with open(REPO / "assets" / "demo" / "manifest.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:limit]
    folder.mkdir(parents=True)
    for r in rows:
        shutil.copy(REPO / "assets" / "demo" / r["path"], folder / Path(r["path"]).name)
        r["path"] = Path(r["path"]).name
    with open(folder / "manifest.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return folder / "manifest.csv"


def _opens_per_clip(counter: OpenCounter, names: list[str]) -> float:
    got = counter.take()
    return sum(got[n] for n in names) / len(names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from cuelab.core.runs import config_from_mapping, run_eval

    try:
        from cuelab.core.cues import FeatureCache
    except ImportError:  # before issue 19
        from cuelab.core.cues.features import FeatureCache

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        manifest = _copy_demo(base / "data", args.limit)
        names = [p.name for p in manifest.parent.glob("*.flac")]
        cache = FeatureCache(base / "cache")

        def cfg(out_dir: Path) -> object:
            return config_from_mapping(
                {"manifest": str(manifest), "models": ["reference", "oracle:-"],
                 "conditions": "audio-only,correct", "seeds": [0], "out": str(out_dir),
                 "bootstrap": 200, "workers": 1, "threads": 1},
                base_dir=None,
            )  # fmt: skip

        counter = OpenCounter([manifest.parent])
        counter.take()
        run_eval(cfg(base / "cold"), cache=cache)
        out["emotion_cold_opens_per_clip"] = _opens_per_clip(counter, names)
        times, cpu, opens = [], [], []
        for k in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            run_eval(cfg(base / f"warm{k}"), cache=cache)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            opens.append(_opens_per_clip(counter, names))
        out["emotion_warm_opens_per_clip"] = opens[0]
        out["emotion_warm_s_median"] = round(statistics.median(times), 3)
        out["emotion_warm_s_all"] = [round(t, 3) for t in times]
        out["emotion_warm_cpu_s_median"] = round(statistics.median(cpu), 3)
        counter.close()

        from cuelab.core.tasks.sseu.build import build_sseu

        sset = base / "sseu"
        build_sseu(sset, manifest, None, (5.0,), seed=0)
        folders = sorted({p.parent for p in (sset / "audio").rglob("*.flac")})
        counter = OpenCounter(folders)
        files = [p.name for f in folders for p in f.glob("*.flac")]
        run_eval(config_from_mapping(
            {"manifest": str(sset / "manifest.csv"), "models": ["oracle", "oracle:-"],
             "sseu_tasks": "asr,asc,at", "out": str(base / "sseu-run"), "workers": 1, "threads": 1},
            base_dir=None,
        ))  # fmt: skip
        out["sseu_two_models_opens_per_clip"] = _opens_per_clip(counter, files)
        counter.close()
    out["clips"] = args.limit
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
