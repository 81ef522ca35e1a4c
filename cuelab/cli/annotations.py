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
    a.add_argument("--level", choices=("nominal", "ordinal"), default="nominal")
    a.add_argument("--order", help="comma-separated label order for --level ordinal")
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
    from cuelab.core.datasets.annotation_merge import merge_annotations

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
    """Print the agreement table (or JSON)."""
    raise NotImplementedError


def run_export(args: argparse.Namespace) -> int:
    """Export to one of :data:`FORMATS`."""
    raise NotImplementedError


def run_import(args: argparse.Namespace) -> int:
    """Import a file or folder into sidecars."""
    raise NotImplementedError
