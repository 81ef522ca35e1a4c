"""``cuelab predict``: one clip, one model, closed-set probabilities or a free answer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cuelab.cli.common import add_label_score_argument, add_remote_arguments, json_line
from cuelab.core.models.base import DEVICE_CHOICES, QUANT_CHOICES, Sampling
from cuelab.core.models.capabilities import has_label_texts, is_served

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
    from cuelab.core.cues.tokens import parse_tokens
    from cuelab.core.errors import ModelError, TokenError
    from cuelab.core.models.registry import parse_spec

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
        from cuelab.core.audio.edits import check_engine, parse_edit

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


def _edited(args: argparse.Namespace, audio: Any, sr: int) -> Any:
    """The 16 kHz audio after ``--edit`` (the input itself without it)."""
    if args.edit is None:
        return audio
    from cuelab.core.audio.edit_engines import apply_edit

    return apply_edit(audio, sr, args.edit, args.engine)


def _concepts(args: argparse.Namespace, edited: Any = None, sr: int = 16000) -> tuple[Any, Any]:
    """Features and concept result for ``--tokens auto``, else ``(None, None)``.

    The norms profile is read and validated first, so a bad file fails in one line before
    features are extracted or a model is loaded. The features go into the clip too, so a
    model that reads them (the reference model) does not extract them again.
    """
    if args.tokens.strip().lower() != "auto":
        return None, None
    from cuelab.core.cues.concepts import concepts_for_features
    from cuelab.core.cues.features import FeatureCache, extract_file
    from cuelab.core.cues.norms import load_norms

    norms = load_norms(args.norms)
    if args.gender is None:
        args.gender, args.gender_from = manifest_gender(args.audio, getattr(args, "manifest", None))
    if edited is not None and args.token_source == "edited":
        from cuelab.core.cues.features import extract_signal

        feats = extract_signal(edited, sr, name=f"{args.audio} ({args.edit})")
    else:
        feats = extract_file(args.audio, cache=FeatureCache())
    return feats, concepts_for_features(feats, norms, args.gender)


#: Manifests looked for beside a clip (the window opens a folder through one of these).
NEARBY_MANIFESTS = ("manifest.csv", "cuelab-manifest.csv")


def manifest_gender(audio: str, manifest: str | None = None) -> tuple[str | None, str | None]:
    """The gender a manifest gives ``audio``, and the manifest's path; ``(None, None)`` if none.

    The window takes a clip's gender from the manifest it was opened from, so its tokens use
    the per-gender PITCH/FORMANTS edges; ``predict`` does the same with ``--manifest`` or a
    manifest beside the file. A named manifest must list the file; one found beside it that
    cannot be read or does not list it is passed over (logged).
    """
    import logging
    from pathlib import Path

    from cuelab.core.datasets import read_manifest
    from cuelab.core.errors import CueLabError, ManifestError

    target = Path(audio).resolve()
    found = [Path(manifest)] if manifest else [target.parent / n for n in NEARBY_MANIFESTS]
    for path in found:
        if not manifest and not path.is_file():
            continue
        try:
            rows = read_manifest(path, check_files=False)
        except CueLabError:
            if manifest:
                raise
            logging.getLogger(__name__).info("predict: %s cannot be read; ignored", path)
            continue
        for row in rows:
            if Path(row.path).resolve() == target:
                return row.gender, str(path)
        if manifest:
            raise ManifestError(f"{manifest}: does not list {audio}")
    return None, None


def _token_text(args: argparse.Namespace, concepts: Any) -> str | None:
    if concepts is not None:
        return str(concepts.text())
    choice = args.tokens.strip()
    return None if choice.lower() == "none" else choice


def _prompt(model: Any, task: Any, labels: Any, tokens: str | None) -> Any:
    """The exact prompt text, or for a served model the request's messages (audio left out)."""
    text = model.prompt_text(task, labels, tokens)
    if text is None and is_served(model):
        return model.request_messages(task, labels, tokens)
    return text


def run(args: argparse.Namespace) -> int:
    """Load the model, score (or generate), print the result."""
    from cuelab.core.audio.io import load_audio
    from cuelab.core.models.base import Clip, LoadOptions
    from cuelab.core.models.registry import load_model
    from cuelab.core.models.scoring import parse_answer
    from cuelab.core.tasks.emotion import parse_labels
    from cuelab.core.tasks.prompts import load_task

    _check_options(args)
    labels = parse_labels(args.labels)
    audio, sr = load_audio(args.audio, sr=16000)
    audio = _edited(args, audio, sr)
    feats, concepts = _concepts(args, audio if args.edit is not None else None, sr)
    if args.edit is not None and args.token_source == "original":
        feats = None  # the reference model would read the original's features as its audio
    tokens = _token_text(args, concepts)
    options = LoadOptions(
        quant=args.quant,
        device=args.device,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        think=args.think,
        on_progress=None if args.json else lambda msg: print(f"[model] {msg}", file=sys.stderr),
        scoring=args.scoring or "auto",
        prompt_family=args.prompt_family,
        label_score=args.label_score or "sum",
    )
    if args.concurrency is not None:
        options.concurrency = args.concurrency
    model = load_model(args.model, options)
    try:
        if model.sample_rate != sr and args.edit is None:  # CLAP hears the file at its own rate
            audio, sr = load_audio(args.audio, sr=model.sample_rate)
        elif model.sample_rate != sr:
            from cuelab.core.audio.io import resample

            audio, sr = resample(audio, sr, model.sample_rate), model.sample_rate
        clip = Clip(
            audio=audio,
            sr=sr,
            utt_id=str(args.audio),
            features=feats,
            meta={"gender": args.gender or ""},
        )
        record: dict[str, Any] = {"path": str(args.audio), "model": args.model, "tokens": tokens}
        if concepts is not None:
            record.update(gender=args.gender, norms=args.norms, edges=concepts.edges_used)
            if getattr(args, "gender_from", None):
                record["gender_from"] = args.gender_from
        if args.think:
            record["think"] = True
        if args.edit is not None:
            record.update(edit=args.edit, engine=args.engine, token_source=args.token_source)
        if args.generate:
            task = load_task("ser_rationale", labels=labels)
            sampling = _sampling(args)
            out = model.generate_full(clip, task, tokens, args.max_new_tokens, sampling)
            label = parse_answer(out.text, labels)
            record.update(
                label=label,
                probs={},
                raw_output=out.text,
                unparsed=label is None,
                decoding=out.decoding or {"do_sample": sampling is not None},
                finish_reason=out.finish_reason,
                generated_tokens=out.tokens,
                prompt=out.prompt or _prompt(model, task, labels, tokens),
            )
            if sampling is not None:
                record.update(temperature=sampling.temperature, top_p=sampling.top_p,
                              seed=sampling.seed)  # fmt: skip
        else:
            task = load_task("ser", labels=labels)
            prediction = model.score_labels(clip, task, labels, [tokens])[0]
            record.update(
                label=prediction.label,
                probs=prediction.probs,
                scoring=prediction.scoring or model.scoring_method,
                unparsed=prediction.unparsed,
                prompt=_prompt(model, task, labels, tokens),
            )
        if has_label_texts(model) and not args.generate:
            record["prompts"] = model.label_prompts(labels)  # label -> the text it was scored with
        if has_label_texts(model):
            record["tokens_note"] = model.token_note()
    finally:
        model.unload()  # a worker process or GPU memory is freed whatever happens
    if args.json:
        print(json_line(record))
        return 0
    print(f"{args.audio}: {record['label'] or '(unparsed)'}")
    if tokens:
        print(f"  tokens: {tokens}")
    if record.get("tokens_note") and tokens:
        print(f"  note: {record['tokens_note']}")
    if concepts is not None and concepts.notes:
        for note in concepts.notes:
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
