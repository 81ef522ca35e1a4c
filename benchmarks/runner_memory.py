"""Peak memory of a batch run as the dataset grows.

Builds manifests of N clips (hard links to the demo clips under new names, so
features come from the cache after the first pass), runs ``cuelab eval`` with
the reference model and five conditions in a fresh process per size, and
prints each run's peak resident memory and wall time. Bounded memory means
the peak stays flat while N grows.

    .venv/bin/python benchmarks/runner_memory.py [--sizes 96,384,1536] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"

CHILD = """
import resource, sys
from cuelab.cli import main
code = main(sys.argv[1:])
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("PEAK_KIB", peak_kib)
sys.exit(code)
"""


def make_manifest(folder: Path, n: int) -> Path:
    """A manifest of ``n`` clips: the demo rows repeated under new file names."""
    with open(DEMO / "manifest.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = rows[i % len(rows)]
        name = f"c{i:05d}_{src['path']}"
        target = folder / name
        if not target.exists():
            os.link(DEMO / src["path"], target)
        out.append({**src, "path": name, "speaker": f"{src['speaker']}_{i // len(rows)}"})
    manifest = folder / "manifest.csv"
    with open(manifest, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)
    return manifest


def run_once(manifest: Path, out: Path, cache: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``cuelab eval`` in a fresh process."""
    args = [
        "eval",
        "--manifest", str(manifest),
        "--model", "reference",
        "--conditions", "audio-only,correct,conflict,shuffle,corrupt:0.5",
        "--bootstrap", "200",
        "--no-plots",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "CUELAB_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"cuelab eval failed: {proc.stderr.strip()}")
    peak = next(ln for ln in proc.stdout.splitlines() if ln.startswith("PEAK_KIB"))
    return wall, int(peak.split()[1]) / 1024


def main() -> int:
    """Run each size, print peak memory and time per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="96,384,1536")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = root / "cache"
        make_manifest(root / "warm", len(list(DEMO.glob("*.flac"))))
        run_once(root / "warm" / "manifest.csv", root / "warm-run", cache)  # fill the cache
        for n in sizes:
            manifest = make_manifest(root / f"set{n}", n)
            wall, peak = run_once(manifest, root / f"run{n}", cache)
            results.append({"clips": n, "rows": n * 5, "wall_s": round(wall, 2),
                            "peak_rss_mib": round(peak, 1)})  # fmt: skip
    base = results[0]["peak_rss_mib"]
    for r in results:
        r["peak_ratio"] = round(r["peak_rss_mib"] / base, 3)
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(
                f"{r['clips']:>6} clips  {r['rows']:>6} rows  {r['wall_s']:>7.2f} s  "
                f"peak {r['peak_rss_mib']:>7.1f} MiB  ({r['peak_ratio']:.3f}x the smallest)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
