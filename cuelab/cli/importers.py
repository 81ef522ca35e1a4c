"""``cuelab import {iemocap,aibo,folders} ROOT -o MANIFEST``: a manifest from a release layout."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``import`` sub-command and its three dataset sub-commands."""
    p = subparsers.add_parser(
        "import",
        help="write a manifest from a dataset's original folder layout",
        description=(
            "Read a dataset as released and write a CueLab manifest CSV (paths relative "
            "to the manifest's folder). Prints one summary line; warnings go to stderr."
        ),
    )
    sub = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)

    def common(q: argparse.ArgumentParser, root_help: str) -> None:
        q.add_argument("root", metavar="ROOT", help=root_help)
        q.add_argument("-o", "--out", required=True, metavar="MANIFEST", help="manifest CSV")
        q.add_argument("--json", action="store_true", help="print one JSON object instead")

    common(
        sub.add_parser(
            "iemocap",
            help="IEMOCAP, 4 classes (exc merged into happy); Session5 = test",
            description="4-class IEMOCAP from SessionN/dialog/EmoEvaluation and sentences/wav.",
        ),
        "the IEMOCAP_full_release folder",
    )
    aibo = sub.add_parser(
        "aibo",
        help="FAU Aibo, 5 chunk classes A/E/N/P/R; Ohm = train, Mont = test",
        description=(
            "FAU Aibo Emotion Corpus (IS2009 Emotion Challenge layout: wav/ and "
            "labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt)."
        ),
    )
    common(aibo, "the corpus folder holding wav/ and labels/")
    aibo.add_argument(
        "--speaker-info",
        metavar="FILE",
        help="file with 'SPEAKER GENDER' lines, e.g. 'Ohm_01 m' (gender-specific edges follow)",
    )
    aibo.add_argument(
        "--genders",
        action="store_true",
        help="read misc/speaker_info.txt for the gender column (default: off, one set of edges)",
    )
    aibo.add_argument(
        "--dev-list",
        metavar="FILE",
        help="chunk or speaker ids (one a line) whose rows form the dev split (--split dev)",
    )
    folders = sub.add_parser(
        "folders",
        help="ROOT/<class>/**/*.{wav,flac,ogg,mp3}, label = class folder",
        description="One row per audio file; the label is the top-level folder's name.",
    )
    common(folders, "folder with one sub-folder per class")
    folders.add_argument(
        "--speaker-regex",
        metavar="RE",
        help="regex with a named group (?P<speaker>...) searched in the path below ROOT",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen importer and print its summary (warnings on stderr)."""
    from cuelab.cli.common import json_line

    if args.dataset == "iemocap":
        from cuelab.core.datasets.iemocap import import_iemocap

        report = import_iemocap(args.root, args.out)
    elif args.dataset == "aibo":
        from cuelab.core.datasets.aibo import import_aibo

        report = import_aibo(
            args.root,
            args.out,
            speaker_info=args.speaker_info,
            genders=args.genders,
            dev_list=args.dev_list,
        )
    else:
        from cuelab.core.datasets.folders import import_folders

        report = import_folders(args.root, args.out, speaker_regex=args.speaker_regex)
    if args.json:
        print(json_line(report.to_dict()))
    else:
        print(report.summary())
    for warning in report.warnings:
        print(f"cuelab: warning: {warning}", file=sys.stderr)
    return 0
