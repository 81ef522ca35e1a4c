"""``cuelab sseu``: speech-over-background sets (``build``) and their prompts (``prompt``)."""

from __future__ import annotations

import argparse
from typing import Any

from cuelab.cli.common import accept_negative_numbers, snr_list


def _range(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LOW,HIGH in seconds") from None
    return lo, hi


def register(subparsers: Any) -> None:
    """Add the ``sseu`` sub-command group."""
    p = subparsers.add_parser(
        "sseu",
        help="speech over background sets (SSEU-Bench style)",
        description="Build speech-over-background evaluation sets and show their prompts.",
    )
    sub = p.add_subparsers(dest="sseu_command", metavar="ACTION", required=True)
    b = sub.add_parser(
        "build",
        help="mix speech over backgrounds at several SNRs",
        description=(
            "Mix speech over backgrounds at each SNR and write the mixtures, manifest.csv, "
            "classes.json and build.json to --out. --layout per-speech (the default) gives "
            "every speech clip a seeded background and placement; per-background (the "
            "SSEU paper's, --preset sseu-bench) makes one mixture per background at its "
            "length with the speech at a seeded onset inside it. Without manifests the "
            "bundled demo speech and backgrounds are used. Output is 44.1 kHz, as "
            "SSEU-Bench mixes (--sr to change it); every model hears the set at its own "
            "rate. An --out folder built with another configuration is refused; the same "
            "one is completed."
        ),
    )
    accept_negative_numbers(b)
    b.add_argument(
        "--preset",
        metavar="NAME",
        help="a paper's set settings (sseu-bench: per-background, 7 SNRs, 44.1 kHz); "
        "flags given override them",
    )
    b.add_argument(
        "--layout",
        choices=("per-speech", "per-background"),
        default=None,
        help="one mixture per speech clip (per-speech, the default) or per background clip "
        "at its length (per-background, the SSEU paper's)",
    )
    b.add_argument(
        "--snr-over",
        choices=("speech", "clip"),
        default=None,
        help="the span the SNR holds over: the speech (default) or the whole clip; the "
        "manifest records the span and both measured SNRs",
    )
    b.add_argument("--speech", metavar="MANIFEST", help="speech manifest with transcripts")
    b.add_argument("--backgrounds", metavar="MANIFEST", help="backgrounds manifest")
    b.add_argument(
        "--snrs",
        type=snr_list,
        default=None,
        metavar="LIST",
        help="SNRs in dB, e.g. 10,5,0,-5,-10,inf,-inf (the default)",
    )
    b.add_argument("--seed", type=int, default=0, help="choice of background and placement")
    b.add_argument(
        "--sr", type=int, default=None, help="output rate in Hz (default 44100, as SSEU-Bench)"
    )
    b.add_argument("--format", choices=("flac", "wav"), default="flac", dest="audio_format")
    b.add_argument(
        "--onset-range",
        type=_range,
        default=None,
        metavar="LOW,HIGH",
        help="per-speech: speech onset and background tail drawn from this range in s "
        "(default 0.5,1.5)",
    )
    b.add_argument("--stems", action="store_true", help="also write each mix's two stems")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=run_build)

    q = sub.add_parser(
        "prompt",
        help="print an SSEU task's instruction",
        description="Print the rendered instruction of asr, asc, at, joint or cot.",
    )
    q.add_argument("task", choices=("asr", "asc", "at", "joint", "cot"))
    q.add_argument("--set", metavar="DIR", help="a built set (its classes.json); default: demo")
    q.add_argument(
        "--answers",
        choices=("open", "closed"),
        default="closed",
        help="closed lists the classes (default); open asks in the model's own words "
        "(sseu-bench's reading). Both wordings are CueLab's own.",
    )
    q.set_defaults(func=run_prompt)


def run_build(args: argparse.Namespace) -> int:
    """Build the set with a progress bar; print a summary."""
    from cuelab.cli.common import json_line, progress_control
    from cuelab.core.tasks import DEFAULT_SNRS, DEFAULT_SR, SseuBuildError, build_sseu

    preset = _build_preset(args.preset)
    layout = args.layout or str(preset.get("layout", "per-speech"))
    snr_over = args.snr_over or str(preset.get("snr_over", "speech"))
    snrs = args.snrs if args.snrs is not None else preset.get("snrs", DEFAULT_SNRS)
    sr = args.sr if args.sr is not None else int(preset.get("sr", DEFAULT_SR))
    common: dict[str, Any] = {
        "sr": sr,
        "audio_format": args.audio_format,
        "stems": args.stems,
        "snr_over": snr_over,
        "control": progress_control("sseu build"),
    }
    if layout == "per-background":
        from cuelab.core.tasks import build_per_background

        if args.onset_range is not None:
            raise SseuBuildError(
                "--onset-range is for --layout per-speech; per-background draws the speech "
                "onset inside each background"
            )

        result = build_per_background(
            args.out, args.speech, args.backgrounds, snrs, args.seed, **common
        )
    else:
        result = build_sseu(
            args.out,
            args.speech,
            args.backgrounds,
            snrs,
            args.seed,
            **({"onset_range": args.onset_range} if args.onset_range is not None else {}),
            **common,
        )
    summary = {
        "out": str(result.out_dir),
        "manifest": str(result.manifest),
        "rows": result.rows,
        "written": result.written,
        "reused": result.reused,
        "scenes": result.scenes,
        "events": result.events,
    }
    if args.json:
        print(json_line(summary))
    else:
        print(
            f"wrote {result.manifest} ({result.rows} mixtures: {result.written} new, "
            f"{result.reused} already there)"
        )
        print(f"scenes: {', '.join(result.scenes)}")
        print(f"events: {', '.join(result.events)}")
    return 0


def _build_preset(name: str | None) -> dict[str, Any]:
    """The ``[build]`` table of a preset (empty without one), SNRs parsed."""
    if not name:
        return {}
    from cuelab.core.runs import load_preset

    build = dict(load_preset(name).build)
    if not build:
        from cuelab.core.tasks import SseuBuildError

        raise SseuBuildError(
            f"preset {name} describes no speech-over-background set; sseu build takes "
            "--preset sseu-bench"
        )
    if "snrs" in build:
        build["snrs"] = snr_list(str(build["snrs"]))
    return build


def run_prompt(args: argparse.Namespace) -> int:
    """Print the instruction for the set's (or the demo's) class lists."""
    from cuelab.core.tasks import DEMO_BACKGROUNDS, load_sseu_task, read_backgrounds, read_classes

    if args.set:
        scenes, events = read_classes(args.set)
    else:
        bgs = read_backgrounds(DEMO_BACKGROUNDS)
        scenes = sorted({b.scene for b in bgs})
        events = sorted({e for b in bgs for e in b.events})
    print(load_sseu_task(args.task, scenes, events, answers=args.answers).render())
    return 0
