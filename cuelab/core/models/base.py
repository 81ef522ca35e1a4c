"""The contract every model family implements.

Adapters are loaded lazily through :mod:`cuelab.core.models.registry`, so this
module stays free of torch and transformers: the GUI imports it at start-up.
The shapes here (``Clip`` in, ``Prediction`` out, one prediction per token
variant) are what the runner, the CLI and the window rely on.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from cuelab.core.errors import ModelError

if TYPE_CHECKING:
    from cuelab.core.cues.extract import ClipFeatures

#: The default label set of a task prompt: IEMOCAP's four classes.
DEFAULT_LABELS: tuple[str, ...] = ("angry", "happy", "neutral", "sad")

#: How a label's continuation is ranked (see :attr:`LoadOptions.label_score`).
LABEL_SCORES = ("sum", "mean")

QUANT_CHOICES = ("auto", "nf4", "8bit", "bf16", "fp16", "fp32")
DEVICE_CHOICES = ("auto", "cuda", "cpu")


@dataclass(frozen=True)
class TaskPrompt:
    """An instruction with and without concept tokens: what an adapter is asked.

    The task layer fills it from template files (:func:`cuelab.core.tasks.prompts.load_task`,
    :mod:`cuelab.core.tasks.sseu.prompts`); adapters only render it.

    Attributes:
        name: task name (``ser``).
        audio_only: template with ``{labels}``.
        with_tokens: template with ``{labels}`` and ``{tokens}``; it should start with the
            audio-only text so that token variants share a prefix.
        labels: the default label set.
    """

    name: str
    audio_only: str
    with_tokens: str
    labels: tuple[str, ...] = DEFAULT_LABELS

    def render(self, labels: Sequence[str] | None = None, token_text: str | None = None) -> str:
        """Return the instruction text for ``labels``, with the token line when given."""
        label_text = ", ".join(labels if labels is not None else self.labels)
        if token_text is None or not token_text.strip():
            return self.audio_only.format(labels=label_text)
        return self.with_tokens.format(labels=label_text, tokens=token_text.strip())

    def digest(self) -> str:
        """A short hash of the templates, for run provenance and cache keys."""
        text = "\x00".join((self.name, self.audio_only, self.with_tokens))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class LoadOptions:
    """How to load a model.

    Attributes:
        quant: ``nf4``, ``8bit``, ``bf16``, ``fp16``, ``fp32`` or ``auto`` (bf16 on a GPU,
            fp32 on a CPU).
        device: ``cuda``, ``cpu`` or ``auto`` (a GPU when one is present).
        allow_pickle: accept ``.bin``/``.pt`` weights when no safetensors exist. Off by
            default because unpickling runs code from the file.
        trust_remote_code: run a checkpoint's own Python code. Never implied.
        local_files_only: resolve hub ids from the local cache only (offline).
        think: load a family's reasoning adapter (Audio Flamingo 3's ``think/``).
        on_progress: called with a short stage message while loading.
        scoring: how an audio LM, served or in-process, scores labels (``auto``,
            ``first-token``, ``continuation``, ``generate``; ``auto`` is ``continuation``
            wherever it is possible, see :mod:`cuelab.core.models.scoring_modes`).
        prompt_family: the system prompt a remote model gets (``server``: none).
        concurrency: requests a remote model keeps in flight, over all its endpoints.
        request_timeout: seconds one remote request may take.
        label_score: how a label's continuation is ranked: ``sum`` of its token
            log-probabilities (the default), or ``mean`` per token (length-normalised).
        worker_restarts: how often a model worker (isolated families) that died, hung or
            broke the protocol is replaced and the request sent again (batch runs: 1).
    """

    quant: str = "auto"
    device: str = "auto"
    allow_pickle: bool = False
    trust_remote_code: bool = False
    local_files_only: bool = True
    think: bool = False
    on_progress: Callable[[str], None] | None = None
    scoring: str = "auto"
    prompt_family: str | None = None
    concurrency: int = 16
    request_timeout: float = 600.0
    label_score: str = "sum"
    worker_restarts: int = 0

    def progress(self, message: str) -> None:
        """Report a loading stage to the caller, if it asked."""
        if self.on_progress is not None:
            self.on_progress(message)


def check_label_score(value: str) -> str:
    """``sum`` or ``mean``; anything else is a one-line error."""
    if value not in LABEL_SCORES:
        raise ModelError(f"label score {value!r} is not one of {', '.join(LABEL_SCORES)}")
    return value


@dataclass(frozen=True)
class Sampling:
    """Seeded sampling for free generation; ``None`` in its place means greedy decoding.

    Greedy answers do not depend on a seed, so several seeds of a greedy run repeat one
    answer. Sampling draws a different answer per seed, which is what a spread over seeds
    measures; the seed makes each draw reproducible.

    Attributes:
        temperature: softmax temperature (> 0).
        top_p: nucleus mass kept (0 < top_p <= 1); top-k filtering is off.
        seed: seeds the draw (>= 0); the same seed gives the same text.
    """

    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ModelError(f"sampling temperature must be above 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ModelError(f"sampling top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ModelError(f"sampling seed must be an integer, got {self.seed!r}")
        if not 0 <= self.seed < 2**64:
            raise ModelError(f"sampling seed must be in [0, 2**64), got {self.seed}")

    def describe(self) -> dict[str, object]:
        """The decoding parameters, for run records and JSON output."""
        return {"decoding": "sampling", "temperature": self.temperature, "top_p": self.top_p}


@dataclass
class Clip:
    """One audio clip to analyse.

    Attributes:
        audio: mono float32 samples at ``sr``.
        sr: sample rate (16 kHz everywhere in CueLab).
        utt_id: the clip's id in its manifest (or the file name).
        features: eGeMAPS features from :mod:`cuelab.core.cues.extract`, when already computed;
            adapters that need them compute them otherwise.
        meta: the manifest row (label, transcript, gender, ...).
    """

    audio: np.ndarray
    sr: int = 16000
    utt_id: str = ""
    features: ClipFeatures | None = None
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Prediction:
    """A model's answer for one clip under one prompt variant.

    Attributes:
        label: the chosen label, or None when a free answer did not parse.
        probs: a probability per label (empty for free generation).
        raw_output: the generated text, when the answer was generated.
        unparsed: True when a generated answer named no label; it is counted, never guessed.
        scoring: how this answer was reached, when the adapter chooses per answer (a remote
            model: ``first-token``, ``continuation``, ``generate``...); else the adapter's
            :attr:`ModelAdapter.scoring_method`.
        finish_reason: how a generated answer ended (``stop``, ``length``; "" when scored).
    """

    label: str | None
    probs: dict[str, float]
    raw_output: str | None = None
    unparsed: bool = False
    scoring: str = ""
    finish_reason: str = ""


@dataclass(frozen=True)
class Generation:
    """A generated answer with how it ended.

    Attributes:
        text: the answer, stripped.
        finish_reason: ``stop`` (end of turn or a stop string), ``length`` (the token
            limit), or "" when the family does not say.
        tokens: generated tokens (0 when unknown).
        prompt: the exact text the model was given, audio placeholder unexpanded.
        decoding: every generation parameter actually used.
    """

    text: str
    finish_reason: str = ""
    tokens: int = 0
    prompt: str = ""
    decoding: dict[str, object] = field(default_factory=dict)


class ModelAdapter(ABC):
    """One model family: load, score a closed label set, optionally generate.

    Subclasses set ``family`` and implement :meth:`load` and :meth:`score_labels`.
    """

    family: ClassVar[str] = ""
    #: How the adapter scores labels, for the predictions' ``scoring`` column.
    scoring_method: ClassVar[str] = ""
    #: Keys of :meth:`describe` that are recorded but may change on resume (endpoints).
    recorded_only: ClassVar[tuple[str, ...]] = ()
    #: Requests the adapter can serve at once; the batch engines keep this many clips
    #: in flight (1: one clip after the other).
    concurrency: int = 1
    #: The rate the engines load audio at for this model (CLAP: its feature extractor's).
    sample_rate: int = 16000

    @classmethod
    @abstractmethod
    def load(cls, location: str, options: LoadOptions) -> ModelAdapter:
        """Load the model found at ``location`` (a folder or a cached hub id)."""

    @abstractmethod
    def score_labels(
        self,
        clip: Clip,
        task: TaskPrompt,
        labels: Sequence[str],
        token_texts: Sequence[str | None],
    ) -> list[Prediction]:
        """Score ``labels`` for ``clip`` once per token variant.

        Args:
            clip: the audio.
            task: the prompt template.
            labels: the closed label set.
            token_texts: concept-token texts, one per variant; None means audio only.
                All variants share the clip's prefix (audio + instruction).

        Returns:
            One prediction per entry of ``token_texts``, in order.
        """

    def generate(
        self,
        clip: Clip,
        task: TaskPrompt,
        token_text: str | None,
        max_new_tokens: int = 128,
        sampling: Sampling | None = None,
    ) -> str:
        """Generate a free answer (the text of :meth:`generate_full`).

        Args:
            clip: the audio.
            task: the prompt template.
            token_text: concept tokens appended to the instruction, or None.
            max_new_tokens: generation limit.
            sampling: None for greedy decoding (the default, the same text every call);
                otherwise a seeded draw, reproducible for one seed, that leaves the
                caller's global random state untouched.
        """
        return self.generate_full(clip, task, token_text, max_new_tokens, sampling).text

    def generate_full(
        self,
        clip: Clip,
        task: TaskPrompt,
        token_text: str | None,
        max_new_tokens: int = 128,
        sampling: Sampling | None = None,
        stop: Sequence[str] | None = None,
    ) -> Generation:
        """A free answer with its prompt, decoding, finish reason and token count.

        Families that generate implement this; ``stop`` strings are honoured only by
        those that support them (remote servers). The default cannot generate.
        """
        raise ModelError(f"model family {self.family!r} cannot generate free text")

    def prompt_text(
        self, task: TaskPrompt, labels: Sequence[str], token_text: str | None
    ) -> str | None:
        """The exact text the model is given for a variant (None: no text prompt)."""
        return None

    def describe(self) -> dict[str, object]:
        """Provenance for run.json: family, location, hash/revision, quant, device, dtype."""
        return {"family": self.family}

    def unload(self) -> None:  # noqa: B027 - optional hook, nothing to free by default
        """Free the model's memory; the adapter is unusable afterwards."""
