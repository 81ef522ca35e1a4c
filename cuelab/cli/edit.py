"""``cuelab edit IN.wav -o OUT.wav EDIT [--engine world|praat] [--json]``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from cuelab.cli.common import json_line


def register(subparsers: Any) -> None:
    """Add the ``edit`` sub-command."""
    from cuelab.core.audio import ENGINES, KINDS

    kinds = ", ".join(f"{k} ({v.help})" for k, v in KINDS.items())
    p = subparsers.add_parser(
        "edit",
        help="edit a cue of the audio itself (pitch, tempo, gain, tilt, …) and measure it",
        description=(
            "Write IN edited by EDIT to OUT and measure what the edit actually did "
            "(F0 shift, duration, level, formants, concept tokens before and after). "
            "EDIT is e.g. pitch=+2st, tempo=1.2, gain=-6dB, loudness=-23LUFS, "
            "tilt=-3dB/oct, formant=1.1, jitter=2%%, shimmer=2%%, breathiness=+6dB, "
            "several joined by commas, or resynth (unedited resynthesis, the control). "
            f"Kinds: {kinds}."
        ),
    )
    p.add_argument("audio", metavar="IN", help="input audio file")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output file (.wav/.flac)")
    p.add_argument("edit", metavar="EDIT", help="the edit, e.g. pitch=+2st,tempo=1.2")
    p.add_argument("--engine", choices=ENGINES, default="world", help="resynthesis engine")
    p.add_argument("--norms", metavar="JSON", help="norms profile for the tokens")
    p.add_argument("--gender", choices=["m", "f"], help="speaker gender for PITCH/FORMANTS")
    p.add_argument("--seed", type=int, default=0, help="seed of jitter/shimmer perturbations")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Edit, write, measure, print."""
    from cuelab.core.audio import check_engine, load_audio, parse_edit, write_audio
    from cuelab.core.cues import edit_and_measure, load_norms

    chain = parse_edit(args.edit)
    check_engine(args.engine, chain)  # fails before the file is read
    norms = load_norms(args.norms)
    x, sr = load_audio(args.audio, sr=None)
    report = edit_and_measure(
        x, sr, chain, args.engine, norms=norms, gender=args.gender, seed=args.seed
    )
    peak = float(abs(report.audio).max())
    if peak > 1.0 and str(args.out).lower().endswith(".flac"):
        # FLAC is integer PCM: the file holds less than was measured, so say so
        report.flags.append(
            f"{args.out}: peak {peak:.2f} exceeds full scale and is clipped in FLAC "
            "(write .wav to keep it)"
        )
    write_audio(args.out, report.audio, sr)
    record = report.to_json()
    if args.json:
        print(json_line({**record, "path": str(args.audio), "out": str(args.out)}))
        return 0
    m = report.measured
    print(f"{args.out}: {record['edit']} ({record['engine']})")

    def show(key: str, spec: str) -> str:  # an unmeasurable quantity reads n/a, not +nan
        v = m.get(key, math.nan)
        return format(v, spec) if isinstance(v, int | float) and math.isfinite(v) else "n/a"

    print(
        f"  F0 {show('f0_shift_st', '+.2f')} st, duration x{show('duration_ratio', '.3f')}, "
        f"RMS {show('rms_change_db', '+.2f')} dB, F1 {show('f1_change_pct', '+.1f')} %, "
        f"F2 {show('f2_change_pct', '+.1f')} %"
    )
    for concept, before in record["tokens_before"].items():
        after = record["tokens_after"][concept]
        mark = "" if after == before else "  *"
        print(f"  {concept:<14}{before:<13}-> {after}{mark}")
    for flag in record["flags"]:
        print(f"  flag: {flag}")
    return 0
