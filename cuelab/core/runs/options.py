"""A run's options grouped by who reads them: the common ones, then each task kind's.

:class:`~cuelab.core.runs.config.RunConfig` keeps its flat fields, because they
are the TOML keys, the run.json ``config`` and the ``--print-config`` output of
every run folder written so far, and resume compares them. What changes is who
reads what: a task kind reads its own group (``config.emotion``,
``config.sseu``), a typed, frozen view built from the flat fields, and
:data:`COMMON` lists what the engine and every kind share. Every field belongs
to exactly one group (a test keeps it so), so a new option has to say whose it is.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from cuelab.core.models.base import Sampling

#: The fields every run has, whatever its task kind (the engine's and the models').
COMMON = (
    "manifest", "models", "out", "split", "seeds", "limit", "shard", "quant", "device",
    "bootstrap", "bootstrap_seed", "workers", "threads", "preset", "preset_overrides",
    "scoring", "prompt_family", "concurrency", "label_score", "fail_fast", "allow_pickle",
    "trust_remote_code",
)  # fmt: skip


@dataclass(frozen=True)
class EmotionOptions:
    """What an emotion run (closed labels under token interventions, audio edits) reads.

    Attributes:
        conditions: the token conditions (``audio-only``, ``correct``, ``shuffle``...).
        labels: the closed label set (None: the split's labels).
        task: the prompt task (``ser``).
        norms: the norms profile (None: the shipped default).
        edits: the audio edits crossed with the conditions (empty: none).
        edit_engine: the resynthesis engine of the edits.
    """

    conditions: tuple[str, ...]
    labels: tuple[str, ...] | None
    task: str
    norms: str | None
    edits: tuple[str, ...]
    edit_engine: str


@dataclass(frozen=True)
class SseuOptions:
    """What a speech/scene/event run reads (see :mod:`cuelab.core.runs.sseu`).

    Attributes:
        sseu_tasks: the independent tasks (``asr``, ``asc``, ``at``).
        joint: one prompt asks all three.
        cot: the chain-of-thought prompt.
        matcher: how free scene and event answers become classes.
        answers: prompts list the classes (``closed``) or ask in the model's words (``open``).
        max_new_tokens: generation limit of independent and joint prompts.
        cot_max_new_tokens: generation limit of the CoT prompt.
        sample: answers are seeded draws, one per seed.
        temperature: sampling temperature (set when ``sample``).
        top_p: sampling nucleus mass (set when ``sample``).
    """

    sseu_tasks: tuple[str, ...]
    joint: bool
    cot: bool
    matcher: str
    answers: str
    max_new_tokens: int
    cot_max_new_tokens: int
    sample: bool
    temperature: float | None
    top_p: float | None

    @property
    def modes(self) -> tuple[str, ...]:
        """The SSEU modes asked: ``independent``, ``joint``, ``cot``."""
        on = (bool(self.sseu_tasks), self.joint, self.cot)
        return tuple(m for m, flag in zip(("independent", "joint", "cot"), on) if flag)

    def sampling(self, seed: int) -> Sampling | None:
        """The draw of one generation (None: greedy)."""
        if not self.sample:
            return None
        assert self.temperature is not None and self.top_p is not None  # set by RunConfig
        return Sampling(self.temperature, self.top_p, seed)

    def decoding(self) -> dict[str, Any]:
        """How answers are decoded, as run.json records it."""
        if not self.sample:
            return {"decoding": "greedy", "temperature": None, "top_p": None}
        return {"decoding": "sampling", "temperature": self.temperature, "top_p": self.top_p}


#: Each task kind's group, by the kind's name.
KIND_OPTIONS: dict[str, type] = {"emotion": EmotionOptions, "sseu": SseuOptions}
Options = TypeVar("Options")


def option_names(group: type) -> tuple[str, ...]:
    """The flat RunConfig fields a group is made of."""
    return tuple(f.name for f in fields(group))


def view(config: object, group: type[Options]) -> Options:
    """``group`` filled from ``config``'s flat fields of the same names."""
    return group(**{name: getattr(config, name) for name in option_names(group)})
