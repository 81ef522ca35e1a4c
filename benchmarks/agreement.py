"""How long the agreement figures take as a dataset grows (the Agreement tab recomputes live).

Builds a synthetic reliability table: N clips, A annotators who each label a
clip with probability 0.8 and give its true class (one of C) with
probability 0.75, and times, in one process:

1. Krippendorff's alpha (nominal) alone;
2. its bootstrap interval (``--boot`` resamples over units);
3. everything the window and ``cuelab annotations agreement`` show
   (:func:`cuelab.core.reports.team_agreement.team_agreement`, with the same
   number of resamples as the window, 500).

Usage::

    .venv/bin/python benchmarks/agreement.py [--units 1000,10000,50000] [--annotators 3]
        [--classes 6] [--boot 1000]
"""

from __future__ import annotations

import argparse
import random
import time

from cuelab.core.datasets.annotations import Annotation
from cuelab.core.metrics.agreement import alpha_bootstrap_ci, krippendorff_alpha
from cuelab.core.reports.team_agreement import team_agreement, unit_tables


def synthetic(n: int, annotators: int, classes: int, seed: int = 0) -> dict[str, list[Annotation]]:
    """Annotator -> whole-clip annotations of ``n`` clips."""
    rng = random.Random(seed)
    labels = [f"c{k}" for k in range(classes)]
    truth = [rng.choice(labels) for _ in range(n)]
    out: dict[str, list[Annotation]] = {}
    for a in range(annotators):
        who = f"a{a}"
        out[who] = [
            Annotation(
                f"clip{i:06d}.wav", t if rng.random() < 0.75 else rng.choice(labels), annotator=who
            )
            for i, t in enumerate(truth)
            if rng.random() < 0.8
        ]
    return out


def timed(fn, *args, **kw) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kw)
    return time.perf_counter() - start, value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", default="1000,10000,50000")
    p.add_argument("--annotators", type=int, default=3)
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--boot", type=int, default=1000)
    args = p.parse_args()
    print(f"{'units':>8} {'alpha':>8} {'alpha s':>9} {'CI s':>8} {'tab s':>8}")
    for n in (int(x) for x in args.units.split(",")):
        team = synthetic(n, args.annotators, args.classes)
        clips, _regions = unit_tables(team)
        rows = clips.rows()
        t_alpha, alpha = timed(krippendorff_alpha, rows)
        t_ci, _ci = timed(alpha_bootstrap_ci, rows, n_boot=args.boot)
        t_all, _res = timed(team_agreement, "unused.csv", annotations=team, n_boot=500)
        print(f"{n:>8} {alpha:>8.3f} {t_alpha:>9.3f} {t_ci:>8.2f} {t_all:>8.2f}")


if __name__ == "__main__":
    main()
