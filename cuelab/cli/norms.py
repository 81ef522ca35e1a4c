"""``cuelab norms MANIFEST -o JSON``: build a norms profile from a corpus."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``norms`` sub-command."""
    p = sub.add_parser(
        "norms",
        help="build a norms profile (medians, IQRs, bin edges) from a manifest",
        description="Extract eGeMAPS for every clip of a manifest and write a norms profile.",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="manifest CSV")
    p.add_argument("-o", "--output", required=True, metavar="JSON", help="profile to write")
    p.add_argument("--split", help="use only this split (e.g. train)")
    p.add_argument("--label", default="", help="free-text description stored in the profile")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Extract features in parallel and write the profile."""
    from pathlib import Path

    from cuelab.cli.common import progress_control
    from cuelab.core.cues import FeatureCache, FeatureConfig, build_norms, extract_many
    from cuelab.core.datasets import read_manifest
    from cuelab.core.errors import ManifestError, NormsError

    if Path(args.output).is_dir():  # refuse before minutes of extraction, not after
        raise NormsError(
            f"{args.output}: is a folder; give the profile's file name (e.g. norms.json)"
        )
    manifest = read_manifest(args.manifest)
    rows = manifest.split(args.split)
    if not rows:
        raise ManifestError(f"{args.manifest}: no rows in split '{args.split}'")
    config = FeatureConfig()
    control = progress_control("features")
    feats = extract_many(
        [r.path for r in rows], config, FeatureCache(), workers=args.workers, control=control
    )
    profile = build_norms(
        [f.descriptors for f in feats],
        [r.gender for r in rows],
        source_manifest=str(args.manifest),
        source_manifest_sha256=manifest.sha256,
        feature_config={
            "feature_set": config.feature_set,
            "sample_rate": config.sample_rate,
            "key": config.key(),
        },
        label=args.label
        or f"built from {args.manifest}" + (f" (split {args.split})" if args.split else ""),
    )
    out = profile.save(args.output)
    print(
        f"wrote {out} ({profile.n_clips} clips; by gender {profile.n_clips_by_gender})",
        file=sys.stderr,
    )
    return 0
