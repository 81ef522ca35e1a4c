"""``cuelab sweep AUDIO --model SPEC --edit pitch --from -6st --to +6st --steps 13``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from cuelab.cli.common import json_line


def register(subparsers: Any) -> None:
    """Add the ``sweep`` sub-command."""
    from cuelab.core.audio import KINDS

    p = subparsers.add_parser(
        "sweep",
        help="step one audio edit over a grid and plot P(label) and the concept scores",
        description=(
            "Edit AUDIO (or every clip of --manifest) at --steps amounts from --from to --to, "
            "and write sweep.csv and sweep.png (P(label) and concept scores against the "
            "amount) into --out. With --manifest also sweep_mean.csv: the mean curves "
            "with 95 %% t-intervals over clips."
        ),
    )
    # "--from -6st" is an amount, not an option
    p._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[A-Za-z%/]*$")  # type: ignore[attr-defined]
    p.add_argument("audio", nargs="?", metavar="AUDIO", help="audio file (or --manifest)")
    p.add_argument("--manifest", metavar="CSV", help="sweep every clip of a manifest")
    p.add_argument("--limit", type=int, metavar="N", help="with --manifest: the first N clips")
    p.add_argument("--model", required=True, metavar="SPEC", help="model spec, e.g. reference")
    p.add_argument("--edit", required=True, choices=list(KINDS), help="the edit kind to step")
    p.add_argument("--from", dest="start", required=True, metavar="AMOUNT", help="e.g. -6st")
    p.add_argument("--to", dest="stop", required=True, metavar="AMOUNT", help="e.g. +6st")
    p.add_argument("--steps", type=int, default=13, help="grid points (default 13)")
    p.add_argument("--engine", choices=("world", "praat"), default="world")
    p.add_argument("--tokens", choices=("edited", "original", "none"), default="edited",
                   help="concept tokens from the edited audio, the original, or none")  # fmt: skip
    p.add_argument("--labels", default="iemocap", metavar="iemocap|aibo|a,b,c")
    p.add_argument("--norms", metavar="JSON", help="norms profile (default: the demo one)")
    p.add_argument("--gender", choices=("m", "f"), help="speaker gender (single clip)")
    p.add_argument("--quant", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default sweep-KIND)")
    p.add_argument("--no-plot", action="store_true", help="write the CSV only")
    p.add_argument("--json", action="store_true", help="print one JSON line per point")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the model once, sweep each clip, write the tables and the figure."""
    from cuelab.core.audio import EditError, check_engine, load_audio
    from cuelab.core.cues import load_norms
    from cuelab.core.errors import AudioError, CueLabError, FeatureError
    from cuelab.core.models import LoadOptions, load_model
    from cuelab.core.runs import (
        mean_curves,
        parse_grid,
        point_header,
        point_row,
        sweep_clip,
        write_csv,
    )
    from cuelab.core.tasks import load_task, parse_labels

    if (args.audio is None) == (args.manifest is None):
        raise CueLabError("sweep: give AUDIO or --manifest (one of them)")
    grid = parse_grid(args.edit, args.start, args.stop, args.steps)
    for chain in grid.chains():  # an engine that cannot do the edit fails before any clip
        check_engine(args.engine, chain)
    labels = parse_labels(args.labels)
    norms = load_norms(args.norms)
    clips: list[tuple[str, str, str | None]] = []  # (utt id, path, gender)
    if args.manifest:
        from cuelab.core.datasets import read_manifest

        rows = read_manifest(args.manifest).rows
        rows = rows[: args.limit] if args.limit else rows
        clips = [(r.utt_id, str(r.path), r.gender) for r in rows]
    else:
        clips = [(Path(args.audio).stem, args.audio, args.gender)]
    out = Path(args.out or f"sweep-{grid.kind}")
    if out.exists() and not out.is_dir():
        raise CueLabError(f"{out}: exists and is not a folder (-o names the output folder)")
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, LoadOptions(quant=args.quant, device=args.device))
    task = load_task("ser", labels=labels)
    points = []
    skipped = 0
    try:
        for utt, path, gender in clips:
            try:
                audio, sr = load_audio(path, sr=model.sample_rate)
                clip_points = list(sweep_clip(audio, sr, utt, grid, model, task, labels,
                                              engine=args.engine, norms=norms, gender=gender,
                                              tokens=args.tokens))  # fmt: skip
            except (AudioError, FeatureError, EditError) as exc:  # the clip's, not the model's
                if not args.manifest:
                    raise
                # one bad clip of a batch does not lose the others' curves
                skipped += 1
                print(f"cuelab: warning: {utt}: skipped ({exc})", file=sys.stderr)
                continue
            for point in clip_points:
                points.append(point)
                if args.json:
                    print(json_line({"utt_id": utt, "edit": point.edit, "amount": point.amount,
                                     "prediction": point.prediction, "probs": point.probs,
                                     "scores": point.scores, "tokens": point.tokens}))  # fmt: skip
    finally:
        model.unload()
    if not points:
        raise CueLabError(f"sweep: no clip could be swept ({skipped} skipped)")
    header = point_header(labels)
    table = [point_row(p, labels) for p in points]
    written = [write_csv(out / "sweep.csv", header, table)]
    unit = {"": "factor"}.get(_unit(grid.kind), _unit(grid.kind))
    xlabel = f"{grid.kind} ({unit})"
    if args.manifest:
        mean_header, mean_rows = mean_curves(points, labels)
        written.append(write_csv(out / "sweep_mean.csv", mean_header, mean_rows))
        plot_header, plot_rows = mean_header, mean_rows
        title = f"{args.model}: mean over {len(clips) - skipped} clips (95 % CI)"
    else:
        plot_header, plot_rows = header, table
        title = f"{args.model}: {Path(args.audio).name}"
    if not args.no_plot:
        from cuelab.core.reports import sweep_figure

        written.append(sweep_figure(out / "sweep.png", plot_header, plot_rows, labels, xlabel,
                                    title))  # fmt: skip
    if not args.json:
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _unit(kind: str) -> str:
    from cuelab.core.audio import KINDS

    return KINDS[kind].unit
