"""``cuelab annotations merge|agreement|export|import``: annotation shared by a team.

- ``merge MANIFEST [SIDECAR...] [-o CSV]``: bring annotators' sidecars (from
  copies of the dataset) beside the manifest, write the merged table and list
  every conflict.
- ``agreement MANIFEST [--json] [--run DIR]``: Krippendorff's alpha with a
  bootstrap CI, Cohen's kappa per pair, Fleiss' kappa, per-class agreement and,
  with a run folder, each annotator against the model.
- ``export MANIFEST --format textgrid|eaf|labelstudio -o OUT`` and
  ``import IN --manifest MANIFEST``: Praat, ELAN and Label Studio.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

FORMATS = ("textgrid", "eaf", "labelstudio")


def register(sub: Any) -> None:
    """Add the ``annotations`` sub-command and its own sub-commands."""
    p = sub.add_parser(
        "annotations",
        help="merge annotators' sidecars, agreement, TextGrid/EAF/Label Studio",
        description="Annotation shared by a team: one sidecar per annotator beside a manifest.",
    )
    inner = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    m = inner.add_parser(
        "merge",
        help="merge annotators' sidecars beside a manifest; conflicts are listed, never lost",
        description=(
            "Copy the given sidecars (<stem>.annotations.<annotator>.csv, from copies of the "
            "dataset) beside MANIFEST, write <stem>.annotations-merged.csv with every label of "
            "every annotator, and list the conflicts."
        ),
    )
    m.add_argument("manifest", metavar="MANIFEST")
    m.add_argument("sidecars", nargs="*", metavar="SIDECAR", help="annotators' sidecars")
    m.add_argument("-o", "--output", metavar="CSV", help="merged table (default beside MANIFEST)")
    m.set_defaults(func=run_merge)
    _register_agreement(inner)
    _register_formats(inner)


def _register_agreement(inner: Any) -> None:
    a = inner.add_parser(
        "agreement",
        help="Krippendorff's alpha, Cohen's and Fleiss' kappa of the annotators of a manifest",
        description="Agreement between the annotators of MANIFEST (whole clips and regions).",
    )
    a.add_argument("manifest", metavar="MANIFEST")
    a.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a.add_argument(
        "--run", metavar="DIR", help="a run folder of this manifest: annotators against the model"
    )
    a.add_argument("--condition", default="audio-only", help="the run's condition (audio-only)")
    a.add_argument("--order", help="comma-separated labels, lowest first: also gives ordinal alpha")
    a.add_argument("--bootstrap", type=int, default=1000, help="resamples for the CI (1000)")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=run_agreement)


def _register_formats(inner: Any) -> None:
    e = inner.add_parser(
        "export",
        help="write annotations as Praat TextGrid, ELAN .eaf or Label Studio JSON",
        description=(
            "TextGrid and EAF: one file per clip, named after the clip, one tier per annotator, "
            "in folder OUT. Label Studio: one JSON file OUT (tasks with annotations, and the "
            "run's answers as predictions with --run)."
        ),
    )
    e.add_argument("manifest", metavar="MANIFEST")
    e.add_argument("--format", choices=FORMATS, required=True)
    e.add_argument("-o", "--output", required=True, metavar="OUT")
    e.add_argument("--run", metavar="DIR", help="Label Studio: the run's answers as predictions")
    e.add_argument("--condition", default="audio-only", help="the run's condition (audio-only)")
    e.set_defaults(func=run_export)

    i = inner.add_parser(
        "import",
        help="read TextGrid, EAF or Label Studio JSON into the annotators' sidecars",
        description=(
            "IN: a .TextGrid or .eaf file, a Label Studio .json, or a folder of them. Each tier "
            "(Label Studio: each completed_by) becomes an annotator's sidecar beside MANIFEST."
        ),
    )
    i.add_argument("input", metavar="IN")
    i.add_argument("--manifest", required=True, metavar="MANIFEST")
    i.set_defaults(func=run_import)


def run_merge(args: argparse.Namespace) -> int:
    """Merge and list conflicts (exit 0: conflicts are data, not errors)."""
    from pathlib import Path

    from cuelab.core.datasets import merge_annotations
    from cuelab.core.errors import ManifestError

    if not Path(args.manifest).is_file():
        raise ManifestError(f"{args.manifest}: manifest not found")
    result = merge_annotations(args.manifest, args.sidecars, out=args.output)
    for path in result.written:
        print(f"wrote {path}", file=sys.stderr)
    n_ann = len({a.annotator for _s, a in result.entries})
    print(
        f"merged {len(result.entries)} labels of {n_ann} annotators into {result.table}; "
        f"{len(result.conflicts)} conflicts",
        file=sys.stderr,
    )
    for c in result.conflicts:
        print(c.describe())
    return 0


def run_agreement(args: argparse.Namespace) -> int:
    """Print the agreement table (or one JSON object with ``--json``)."""
    from pathlib import Path

    from cuelab.cli.common import json_line
    from cuelab.core.datasets import annotators
    from cuelab.core.errors import ManifestError
    from cuelab.core.reports import compute_team_agreement, run_predictions

    if not Path(args.manifest).is_file():
        raise ManifestError(f"{args.manifest}: manifest not found")
    if not annotators(args.manifest):
        raise ManifestError(f"{args.manifest}: no annotation sidecars beside it")
    predictions = run_predictions(args.run, args.manifest, args.condition) if args.run else None
    order = [o.strip() for o in args.order.split(",") if o.strip()] if args.order else None
    result = compute_team_agreement(
        args.manifest, predictions=predictions, order=order, n_boot=args.bootstrap, seed=args.seed
    )
    if args.json:
        print(json_line(result.as_json()))
        return 0
    print(format_table(result))
    return 0


def _f(x: float | None) -> str:
    import math

    return "-" if x is None or not math.isfinite(x) else f"{x:.3f}"


def format_table(result: Any) -> str:
    """The figures of a :class:`~cuelab.core.reports.team_agreement.TeamAgreement` as text."""
    lines = [
        f"annotators: {', '.join(result.annotators)}",
        f"units (clips labelled by 2+ annotators): {result.n_units}",
        f"Krippendorff's alpha (nominal): {_f(result.alpha)}"
        f"  95% CI [{_f(result.alpha_ci_low)}, {_f(result.alpha_ci_high)}]",
    ]
    if result.alpha_ordinal is not None:
        lines.append(
            f"Krippendorff's alpha (ordinal, {' < '.join(result.order)}): "
            f"{_f(result.alpha_ordinal)}"
        )
    lines.append(f"Fleiss' kappa: {_f(result.fleiss_kappa)}")
    if result.n_region_units:
        lines.append(
            f"regions labelled by 2+ annotators: {result.n_region_units}"
            f"  alpha (nominal): {_f(result.alpha_regions)}"
        )
    lines += ["", f"{'annotator A':<16}{'annotator B':<16}{'n':>6}{'agree':>7}{'kappa':>8}"]
    for p in result.pairwise:
        lines.append(
            f"{p['annotator_a']:<16}{p['annotator_b']:<16}{p['n']:>6}{p['agree']:>7}"
            f"{_f(p['kappa']):>8}"
        )
    lines += ["", f"{'class':<20}{'agreement':>10}"]
    for label, value in sorted(result.per_class.items()):
        lines.append(f"{label:<20}{_f(value):>10}")
    if result.versus_model:
        lines += ["", f"{'annotator':<16}{'model':<28}{'n':>6}{'agree':>7}{'kappa':>8}"]
        for r in result.versus_model:
            lines.append(
                f"{r['annotator']:<16}{r['model'][:27]:<28}{r['n']:>6}{r['agree']:>7}"
                f"{_f(r['kappa']):>8}"
            )
    return "\n".join(lines)


def run_export(args: argparse.Namespace) -> int:
    """Export to one of :data:`FORMATS`."""
    from cuelab.core.reports import export_annotations, run_predictions

    predictions = run_predictions(args.run, args.manifest, args.condition) if args.run else None
    written = export_annotations(args.manifest, args.format, args.output, predictions=predictions)
    where = args.output if args.format != "labelstudio" else written[0]
    print(f"wrote {len(written)} files ({args.format}) to {where}", file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import a file or folder into sidecars; what was skipped is listed on stderr."""
    from cuelab.core.reports import import_annotations

    result = import_annotations(args.input, args.manifest)
    for note in result.skipped:
        print(f"note: {note}", file=sys.stderr)
    who = sorted({a.annotator for a in result.annotations})
    print(
        f"imported {len(result.annotations)} labels and notes of {len(who)} annotators"
        f" ({', '.join(who)}); {result.replaced} replaced earlier ones",
        file=sys.stderr,
    )
    for path in result.written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
