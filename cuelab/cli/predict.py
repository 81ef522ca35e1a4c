"""``cuelab predict``: one clip, one model, closed-set probabilities or a free answer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cuelab.cli.common import add_label_score_argument, add_remote_arguments, json_line
from cuelab.core.models import DEVICE_CHOICES, QUANT_CHOICES, Sampling
from cuelab.core.workbench import NEARBY_MANIFESTS, PredictRequest, manifest_gender, predict

__all__ = ["NEARBY_MANIFESTS", "manifest_gender", "register", "request", "run", "shown_answer"]

THINK_FAMILY = "audio-flamingo-3"
#: The most characters of a generated answer printed on the terminal (``--json`` prints
#: the whole answer, which the model adapters bound).
PRINT_LIMIT = 4000


def shown_answer(text: str, limit: int = PRINT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters for the terminal, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit:,} more characters; --json prints them all]"


def register(subparsers: Any) -> None:
    """Add the ``predict`` parser."""
    parser = subparsers.add_parser(
        "predict",
        help="predict the emotion label of one audio file with a model",
        description=(
            "Score a closed label set for AUDIO (audio + instruction, concept tokens "
            "appended after it), or generate a free answer with --generate."
        ),
    )
    parser.add_argument("audio", metavar="AUDIO", help="audio file (resampled to 16 kHz mono)")
    parser.add_argument(
        "--model",
        required=True,
        metavar="SPEC",
        help="family:location (a folder or a cached hub id), or 'reference' for the shipped model",
    )
    parser.add_argument("--quant", choices=QUANT_CHOICES, default="auto")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument(
        "--tokens",
        default="auto",
        metavar="auto|none|TEXT",
        help="concept tokens: computed from the audio (auto), left out (none), or given text",
    )
    parser.add_argument("--labels", default="iemocap", metavar="iemocap|aibo|a,b,c")
    parser.add_argument(
        "--norms", metavar="JSON", help="norms profile for --tokens auto (default: the demo one)"
    )
    parser.add_argument(
        "--gender",
        choices=("m", "f"),
        help="speaker gender for --tokens auto: per-gender PITCH/FORMANTS edges",
    )
    parser.add_argument(
        "--manifest",
        metavar="CSV",
        help="manifest that lists AUDIO: its gender is used when --gender is not given "
        "(default: manifest.csv or cuelab-manifest.csv beside AUDIO, as the window does)",
    )
    parser.add_argument("--generate", action="store_true", help="free answer with a rationale")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument(
        "--sample",
        action="store_true",
        help="with --generate: a seeded temperature/top-p draw instead of the greedy answer",
    )
    parser.add_argument("--temperature", type=float, metavar="T", help="with --sample (0.7)")
    parser.add_argument("--top-p", type=float, metavar="P", help="with --sample (0.9)")
    parser.add_argument(
        "--seed", type=int, metavar="N", help="with --sample (0): same seed, same text"
    )
    parser.add_argument(
        "--think",
        action="store_true",
        help="Audio Flamingo 3 think mode: apply the checkpoint's think/ adapter (needs peft)",
    )
    parser.add_argument("--allow-pickle", action="store_true", help="accept .bin/.pt weights")
    parser.add_argument("--trust-remote-code", action="store_true", help="run a model's own code")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--edit",
        metavar="EDIT",
        help="predict on the audio edited by EDIT (e.g. pitch=+2st,tempo=1.2; see cuelab edit)",
    )
    parser.add_argument("--engine", choices=("world", "praat"), default="world",
                        help="with --edit: the resynthesis engine")  # fmt: skip
    parser.add_argument(
        "--token-source",
        choices=("edited", "original"),
        default="edited",
        help="with --edit and --tokens auto: tokens from the edited or the original audio",
    )
    add_label_score_argument(parser)
    add_remote_arguments(parser)
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse flag combinations that would be silently ignored, before any loading."""
    from cuelab.core.cues import parse_tokens
    from cuelab.core.errors import ModelError, TokenError
    from cuelab.core.models import parse_spec

    choice = args.tokens.strip()
    auto = choice.lower() == "auto"
    if not auto and (args.norms or args.gender or getattr(args, "manifest", None)):
        raise TokenError("--norms, --gender and --manifest only apply to --tokens auto")
    if choice and choice.lower() not in ("auto", "none"):
        try:  # a typo must fail before a multi-GB model is loaded
            parse_tokens(choice)
        except TokenError as exc:
            raise TokenError(f"--tokens: {exc}") from None
    if args.edit is not None:
        from cuelab.core.audio import check_engine, parse_edit

        chain = parse_edit(args.edit)
        check_engine(args.engine, chain)  # a typo fails before loading
        args.edit = chain.text()  # the record carries the canonical text form (pitch=+2st)
    elif args.engine != "world" or args.token_source != "edited":
        raise ModelError("--engine and --token-source need --edit")
    if args.max_new_tokens < 1:
        raise ModelError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    _sampling(args)  # a bad draw setting fails before loading
    if args.think:
        family, _ = parse_spec(args.model)
        if family != THINK_FAMILY:
            raise ModelError(f"--think is only for {THINK_FAMILY} models, not {family}")


def _sampling(args: argparse.Namespace) -> Sampling | None:
    """The draw asked by ``--sample`` (None: greedy); its settings alone are refused."""
    from cuelab.core.errors import ModelError

    given = [
        flag
        for flag, value in (
            ("--temperature", args.temperature),
            ("--top-p", args.top_p),
            ("--seed", args.seed),
        )
        if value is not None
    ]
    if not args.sample:
        if given:
            raise ModelError(f"{given[0]} needs --sample")
        return None
    if not args.generate:
        raise ModelError("--sample needs --generate (closed-set scoring does not sample)")
    default = Sampling()
    return Sampling(
        default.temperature if args.temperature is None else args.temperature,
        default.top_p if args.top_p is None else args.top_p,
        default.seed if args.seed is None else args.seed,
    )


def request(args: argparse.Namespace) -> PredictRequest:
    """The checked flags as a :class:`~cuelab.core.workbench.PredictRequest`."""
    return PredictRequest(
        audio=args.audio,
        model=args.model,
        quant=args.quant,
        device=args.device,
        tokens=args.tokens,
        labels=args.labels,
        norms=args.norms,
        gender=args.gender,
        manifest=getattr(args, "manifest", None),
        generate=args.generate,
        max_new_tokens=args.max_new_tokens,
        sampling=_sampling(args),
        think=args.think,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        edit=args.edit,
        engine=args.engine,
        token_source=args.token_source,
        scoring=args.scoring or "auto",
        prompt_family=args.prompt_family,
        label_score=args.label_score or "sum",
        concurrency=args.concurrency,
    )


def run(args: argparse.Namespace) -> int:
    """Score (or generate) through :func:`cuelab.core.workbench.predict`, print the result."""
    _check_options(args)
    progress = None if args.json else lambda msg: print(f"[model] {msg}", file=sys.stderr)
    result = predict(request(args), on_progress=progress)
    record = result.record
    if args.json:
        print(json_line(record))
        return 0
    tokens = record["tokens"]
    print(f"{args.audio}: {record['label'] or '(unparsed)'}")
    if tokens:
        print(f"  tokens: {tokens}")
    if record.get("tokens_note") and tokens:
        print(f"  note: {record['tokens_note']}")
    if result.analysis is not None and result.analysis.concepts.notes:
        for note in result.analysis.concepts.notes:
            print(f"  note: {note}")
    for name, p in sorted(record["probs"].items(), key=lambda item: -item[1]):
        print(f"  {name:<12} {p:.3f}")
    if args.generate:
        print(f"  answer: {shown_answer(record['raw_output'])}")
    if args.generate:
        print(
            f"  ended: {record['finish_reason'] or '?'} after {record['generated_tokens']} tokens"
        )
    if record.get("seed") is not None:
        print(
            f"  sampled: temperature {record['temperature']:g}, top-p {record['top_p']:g}, "
            f"seed {record['seed']}"
        )
    return 0
