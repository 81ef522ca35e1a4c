"""``cuelab mix``: speech over a background recording at a chosen SNR."""

from __future__ import annotations

import argparse
import math
from typing import Any

from cuelab.cli.common import accept_negative_numbers, snr_arg


def register(subparsers: Any) -> None:
    """Add the ``mix`` sub-command."""
    p = subparsers.add_parser(
        "mix",
        help="mix speech over a background at an SNR",
        description=(
            "Place SPEECH at --onset inside BACKGROUND (cropped, or looped with "
            "equal-power crossfades) and scale the background so that the SNR over "
            "the speech span is --snr dB. Inputs of any rate and channel count are "
            "resampled and downmixed; the output is mono."
        ),
    )
    accept_negative_numbers(p)  # so that "--snr -inf" parses
    p.add_argument("speech", metavar="SPEECH", help="clean speech file")
    p.add_argument("background", metavar="BACKGROUND", help="background recording")
    p.add_argument(
        "--snr",
        required=True,
        type=snr_arg,
        metavar="DB",
        help="SNR in dB over the speech span; inf = speech alone, -inf = background alone",
    )
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="mixture file (.wav/.flac)")
    p.add_argument("--onset", type=float, default=0.0, metavar="S", help="speech start (s)")
    p.add_argument(
        "--tail",
        type=float,
        default=None,
        metavar="S",
        help="background after the speech (s; default: the onset)",
    )
    p.add_argument(
        "--stems", metavar="DIR", help="also write the scaled speech and background here"
    )
    p.add_argument("--sr", type=int, default=44100, help="output rate in Hz (default 44100)")
    p.add_argument(
        "--crossfade",
        type=float,
        default=50.0,
        metavar="MS",
        help="crossfade at loop seams in ms (default 50)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def _db(gain: float) -> str:
    return "-inf dB" if gain == 0.0 else f"{20.0 * math.log10(gain):+.2f} dB"


def run(args: argparse.Namespace) -> int:
    """Make the mix, write it (and the stems), print what was achieved."""
    from cuelab.core.audio import mix_files, stem_paths

    result = mix_files(
        args.speech,
        args.background,
        args.snr,
        args.out,
        onset_s=args.onset,
        stems_dir=args.stems,
        sr=args.sr,
        tail_s=args.tail,
        crossfade_s=args.crossfade / 1000.0,
    )
    span = result.speech_span
    stems = [str(x) for x in stem_paths(args.out, args.stems)] if args.stems is not None else []
    if args.json:
        from cuelab.cli.common import json_line

        print(
            json_line(
                {
                    "out": str(args.out),
                    "sr": result.sr,
                    "duration_s": result.mix.size / result.sr,
                    "requested_snr_db": result.requested_snr_db,
                    "achieved_snr_db": result.achieved_snr_db,
                    "speech_gain": result.speech_gain,
                    "background_gain": result.background_gain,
                    "joint_gain": result.joint_gain,
                    "onset_s": span.start / result.sr,
                    "looped": result.looped,
                    "stems": stems,
                }
            )
        )
        return 0
    print(f"wrote {args.out} ({result.mix.size / result.sr:.2f} s, {result.sr} Hz, mono)")
    print(
        f"SNR: requested {result.requested_snr_db:g} dB, achieved "
        f"{result.achieved_snr_db:.2f} dB over {span.start / result.sr:.2f}-"
        f"{span.stop / result.sr:.2f} s"
    )
    print(
        f"gains: speech {result.speech_gain:.4g} ({_db(result.speech_gain)}), "
        f"background {result.background_gain:.4g} ({_db(result.background_gain)}), "
        f"joint {result.joint_gain:.4g} ({_db(result.joint_gain)})"
    )
    if result.looped:
        print(f"background looped with {args.crossfade:g} ms crossfades")
    if stems:
        print(f"stems: {stems[0]} {stems[1]}")
    return 0
