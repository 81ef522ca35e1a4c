"""``cuelab import DATASET ROOT -o MANIFEST``: a manifest from a release layout.

Emotion corpora: ``iemocap``, ``aibo``, ``folders``. The SSEU paper's sources:
``vctk`` (speech with transcripts), ``desed`` and ``maestro-real`` (backgrounds with
scenes and events mapped to the paper's 6 scenes and 18 events).
"""

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
    vctk = sub.add_parser(
        "vctk",
        help="VCTK speech + transcripts (SSEU speech manifest)",
        description="VCTK 0.92 (wav48_silence_trimmed/) or 0.80 (wav48/), with txt/ and "
        "speaker-info.txt; writes path, speaker, gender, transcript.",
    )
    common(vctk, "the VCTK corpus folder (holding txt/)")
    vctk.add_argument("--mic", choices=("mic1", "mic2"), default="mic1", help="0.92's microphone")
    common(
        sub.add_parser(
            "desed",
            help="DESED strong-label clips as 'home' backgrounds (SSEU backgrounds manifest)",
            description="Every strong-label TSV under ROOT (filename, onset, offset, "
            "event_label) with its audio; events mapped by assets/sseu/sseu-bench-classes.csv.",
        ),
        "the DESED folder (metadata/ and audio/)",
    )
    maestro = sub.add_parser(
        "maestro-real",
        help="MAESTRO-Real recordings cut into backgrounds (SSEU backgrounds manifest)",
        description="Annotation files under *annotation*/ (onset, offset, label, soft label) "
        "and their audio; recordings cut into --segment second FLAC backgrounds beside the "
        "manifest; scenes and events mapped by assets/sseu/sseu-bench-classes.csv.",
    )
    common(maestro, "the MAESTRO-Real folder")
    maestro.add_argument(
        "--segment", type=float, default=10.0, metavar="S", help="background length (default 10)"
    )
    maestro.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        metavar="P",
        help="soft label at which an event counts (default 0.5)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen importer and print its summary (warnings on stderr)."""
    from cuelab.cli.common import json_line

    if args.dataset == "iemocap":
        from cuelab.core.datasets import import_iemocap

        report = import_iemocap(args.root, args.out)
    elif args.dataset == "aibo":
        from cuelab.core.datasets import import_aibo

        report = import_aibo(
            args.root,
            args.out,
            speaker_info=args.speaker_info,
            genders=args.genders,
            dev_list=args.dev_list,
        )
    elif args.dataset in ("vctk", "desed", "maestro-real"):
        report = _sseu_source(args)
    else:
        from cuelab.core.datasets import import_folders

        report = import_folders(args.root, args.out, speaker_regex=args.speaker_regex)
    if args.json:
        print(json_line(report.to_dict()))
    else:
        print(report.summary())
    for warning in report.warnings:
        print(f"cuelab: warning: {warning}", file=sys.stderr)
    return 0


def _sseu_source(args: argparse.Namespace) -> Any:
    from cuelab.core.tasks import import_desed, import_maestro_real, import_vctk

    if args.dataset == "vctk":
        return import_vctk(args.root, args.out, mic=args.mic)
    if args.dataset == "desed":
        return import_desed(args.root, args.out)
    return import_maestro_real(
        args.root, args.out, segment_s=args.segment, threshold=args.threshold
    )
