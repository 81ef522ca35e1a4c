"""``cuelab tokens AUDIO... [--norms JSON] [--gender m|f] [--json]``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from cuelab.cli.common import json_line


def register(sub: Any) -> None:
    """Add the ``tokens`` sub-command."""
    p = sub.add_parser(
        "tokens",
        help="print the six concept tokens of audio files",
        description="Extract eGeMAPS with openSMILE and print each file's concept scores and tokens.",
    )
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files (wav, flac, ogg, mp3)")
    p.add_argument("--norms", metavar="JSON", help="norms profile (default: the demo profile)")
    p.add_argument("--gender", choices=["m", "f"], help="speaker gender for PITCH/FORMANTS edges")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument("--no-cache", action="store_true", help="do not use the on-disk feature cache")
    p.set_defaults(func=run)


def _table(path: str, rec: dict[str, Any]) -> str:
    lines = [path]
    for concept, token in rec["tokens"].items():
        score = rec["scores"].get(concept)
        shown = (
            "      "
            if concept == "VOICE_QUALITY"
            else (
                "   n/a"
                if score is None or (isinstance(score, float) and math.isnan(score))
                else f"{score:+6.2f}"
            )
        )
        edges = rec["edges"].get(concept)
        extra = f"  ({edges} edges)" if edges else f"  ({rec['voice_quality_reason']})"
        lines.append(f"  {concept:<14}{shown}  {token:<13}{extra}")
    lines.append(f"  text: {rec['text']}")
    lines.extend(f"  note: {n}" for n in rec["notes"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Compute and print tokens for each file."""
    from cuelab.core.cues import FeatureCache, concepts_for_file, load_norms

    norms = load_norms(args.norms)
    cache = None if args.no_cache else FeatureCache()
    for path in args.audio:
        rec = concepts_for_file(path, norms, args.gender, cache).to_json(path)
        print(json_line(rec) if args.json else _table(path, rec), flush=True)
    return 0
