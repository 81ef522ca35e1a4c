"""``cuelab train-reference MANIFEST -o DIR``: train the embedded reference model."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``train-reference`` sub-command."""
    p = sub.add_parser(
        "train-reference",
        help="train the reference classifier (eGeMAPS functionals + token one-hots)",
        description="Train the small reference model on a labelled manifest; saved without pickle.",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--split", default="train", help="split to train on ('' for all rows)")
    p.add_argument("--norms", metavar="JSON", help="norms profile for the tokens (default: demo)")
    p.add_argument("--c", type=float, default=0.1, help="inverse L2 regularisation (default 0.1)")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Extract features, compute aligned tokens, fit, save, report held-out accuracy."""
    import math
    from pathlib import Path

    from cuelab.cli.common import progress_control
    from cuelab.core.cues import FeatureCache, concepts_for_features, extract_many, load_norms
    from cuelab.core.datasets import read_manifest
    from cuelab.core.errors import ManifestError, ModelError
    from cuelab.core.metrics import uar
    from cuelab.core.models import train_reference

    # Refuse bad options before minutes of feature extraction, not after.
    if not (math.isfinite(args.c) and args.c > 0):
        raise ModelError(f"--c must be a positive number, got {args.c:g}")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"{out_dir}: exists and is not a folder; give a folder for the model")
    manifest = read_manifest(args.manifest)
    norms = load_norms(args.norms)
    rows = [r for r in manifest.split(args.split) if r.get("label")]
    if not rows:
        raise ManifestError(f"{args.manifest}: no labelled rows in split '{args.split}'"
                            + _split_hint(manifest, args.split))  # fmt: skip
    feats = extract_many(
        [r.path for r in rows],
        cache=FeatureCache(),
        workers=args.workers,
        control=progress_control("features"),
    )
    tokens = [concepts_for_features(f, norms, r.gender).tokens for f, r in zip(feats, rows)]
    weights = train_reference(
        [f.functionals for f in feats],
        tokens,
        [r.get("label") for r in rows],
        c=args.c,
        info={
            "source_manifest": str(args.manifest),
            "source_manifest_sha256": manifest.sha256,
            "split": args.split,
            "norms_sha256": norms.sha256,
            "note": "baseline classifier, not an audio language model",
        },
    )
    held = [r for r in manifest if r.get("label") and r not in rows]
    if held:
        hf = extract_many([r.path for r in held], cache=FeatureCache(), workers=args.workers)
        truth = [r.get("label") for r in held]
        for name, use_tokens in (("audio-only", False), ("correct tokens", True)):
            preds = []
            for f, r in zip(hf, held):
                t = concepts_for_features(f, norms, r.gender).tokens if use_tokens else None
                p = weights.probs(f.functionals, t)
                preds.append(weights.labels[int(p.argmax())])
            score = uar(truth, preds)
            weights.info[f"heldout_uar_{name.replace(' ', '_')}"] = round(score, 4)
            print(f"held-out UAR ({len(held)} clips, {name}): {score:.3f}", file=sys.stderr)
    out = weights.save(args.output)
    print(f"wrote {out} ({len(rows)} clips, labels {weights.labels})", file=sys.stderr)
    return 0


def _split_hint(manifest: Any, split: str) -> str:
    """What to do when the split is empty: name the splits there are, or ``--split ''``."""
    if not split:
        return ""
    found = sorted({r.get("split") for r in manifest if r.get("split")})
    if "split" not in manifest.columns or not found:
        return (
            " (the manifest has no 'split' column, e.g. one made by cuelab import folders); "
            "pass --split '' to train on every row (no clip is then held out)"
        )
    return f" (its splits: {', '.join(found)}); choose one with --split, or --split '' for all rows"
