"""``cuelab list families|conditions|tasks|presets|matchers [--json]``: what exists, one line each.

The names come from where the code declares them (the model registry, the
prompt tasks, the condition parser's kinds, ``assets/presets/*.toml``), so a
new family or preset shows up here without touching this module; the
one-line descriptions of conditions and families live here, and a test
checks that every declared name has one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Every token condition an emotion run accepts, with what it does.
CONDITION_FORMS: dict[str, str] = {
    "audio-only": "the prompt carries no concept tokens (the baseline)",
    "correct": "the clip's own tokens, from its eGeMAPS features",
    "shuffle": "the split's token sets reassigned by a random permutation (seeded; the paper's)",
    "shuffle-derange": "as shuffle, but a derangement: no clip keeps its own set (seeded)",
    "conflict": "every concept inverted (VERY_LOW<->VERY_HIGH, LOW<->HIGH; VOICE_QUALITY swapped)",
    "corrupt:P": "each token redrawn with probability P from its whole vocabulary (seeded)",
    "corrupt-change:P": "as corrupt:P, but a redrawn token always changes (seeded)",
    "ablate:CONCEPT": "one concept dropped from the token line",
    "invert:CONCEPT": "one concept inverted, the others kept",
}

#: One line per in-process model family (the registry holds the names; a test checks every
#: one is here); an isolated family's line is its recipe's ``summary``.
FAMILY_NOTES: dict[str, str] = {
    "qwen2-audio": "Qwen2-Audio-7B-Instruct, in-process (transformers); FOLDER or HUB_ID",
    "qwen2.5-omni": "Qwen2.5-Omni thinker, in-process (transformers); FOLDER or HUB_ID",
    "audio-flamingo-3": "Audio Flamingo 3 (-hf), in-process; think mode with its think/ LoRA",
    "clap": "CLAP (transformers), zero-shot label/scene/event baseline; FOLDER or HUB_ID",
    "reference": "small eGeMAPS + token classifier (bare `reference` = the shipped demo one)",
    "oracle": "answers with the manifest's ground truth (upper bound); `oracle:-`",
    "openai": "a model behind OpenAI-compatible servers: openai:URL[,URL...][#MODEL]",
}

MATCHERS: dict[str, str] = {
    "lexical": "scene/event answers to classes by words and synonyms (default, no model)",
    "embeddings:FOLDER": "sentence-embedding similarity with a local sentence-transformers folder",
    "openai-embeddings:URL[,URL...][#MODEL]": (
        "the SSEU paper's equations 1-3 over any OpenAI-compatible /v1/embeddings server"
    ),
}

SSEU_TASKS: dict[str, str] = {
    "asr": "SSEU: what is said (WER), one prompt",
    "asc": "SSEU: where the speaker is, the acoustic scene (mACC), one prompt",
    "at": "SSEU: what else sounds, audio tagging (mAP), one prompt",
    "joint": "SSEU: one prompt asks all three",
    "cot": "SSEU: the joint question after reasoning steps (chain of thought)",
}


def families() -> list[tuple[str, str]]:
    """(family, description) for every registered model family."""
    from cuelab.core.models import RECIPES
    from cuelab.core.models import families as registered

    notes = {**FAMILY_NOTES, **{f: r.summary for f, r in RECIPES.items() if r.summary}}
    return [(f, notes.get(f, "model family")) for f in registered()]


def conditions() -> list[tuple[str, str]]:
    """(condition form, description)."""
    return list(CONDITION_FORMS.items())


def tasks() -> list[tuple[str, str]]:
    """(task, description): the emotion prompt tasks (``--task``), then the SSEU tasks (``--tasks``)."""
    from cuelab.core.tasks import TASKS

    out = [
        (name, f"emotion prompt task (--task {name}): assets/prompts/{audio} and {tokens}")
        for name, (audio, tokens) in sorted(TASKS.items())
    ]
    return out + list(SSEU_TASKS.items())


def presets() -> list[tuple[str, str]]:
    """(preset, description) for each ``assets/presets/*.toml`` (its first comment line)."""
    from cuelab.core.paths import assets_dir

    folder = assets_dir() / "presets"
    if not folder.is_dir():
        return []
    return [(p.stem, _comment(p)) for p in sorted(folder.glob("*.toml"))]


def matchers() -> list[tuple[str, str]]:
    """(matcher spec, description)."""
    return list(MATCHERS.items())


KINDS: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "families": families,
    "conditions": conditions,
    "tasks": tasks,
    "presets": presets,
    "matchers": matchers,
}


def _comment(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"
    for line in lines:
        if line.startswith("#") and line.strip("# ").strip():
            return line.strip("# ").strip()
    return "preset"


def register(subparsers: Any) -> None:
    """Add the ``list`` sub-command."""
    p = subparsers.add_parser(
        "list",
        help="what exists: model families, conditions, tasks, presets, matchers",
        description="Print what CueLab offers, one line each (JSON lines with --json).",
    )
    p.add_argument("what", choices=list(KINDS), help="what to list")
    p.add_argument("--json", action="store_true", help='one {"name", "description"} per line')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the list."""
    from cuelab.cli.common import json_line

    items = KINDS[args.what]()
    if not items and not args.json:
        print(f"(no {args.what})")
    width = max((len(name) for name, _ in items), default=0)
    for name, text in items:
        if args.json:
            print(json_line({"name": name, "description": text}))
        else:
            print(f"{name:<{width}}  {text}")
    return 0
