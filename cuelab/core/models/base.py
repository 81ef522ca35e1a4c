"""The contract every model family implements.

Adapters are loaded lazily through :mod:`cuelab.core.models.registry`, so this
module stays free of torch and transformers: the GUI imports it at start-up.
The shapes (``Clip`` in, ``Prediction`` out, one prediction per token variant,
defined in :mod:`cuelab.core.models.shapes` and importable from here) are what
the runner, the CLI and the window rely on. What a family can
do beyond scoring, and the requests the engines send, are in
:mod:`cuelab.core.models.capabilities`; the task prompts are the tasks' own
(:mod:`cuelab.core.tasks.prompts`), seen here only as a
:class:`~cuelab.core.models.capabilities.PromptTemplate`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from cuelab.core.errors import ModelError
from cuelab.core.models.capabilities import (
    Capability,
    GenerateRequest,
    PromptTemplate,
    ScoreRequest,
    generates,
)
from cuelab.core.models.shapes import Clip, Generation, Prediction, Sampling

__all__ = [
    "DEVICE_CHOICES",
    "LABEL_SCORES",
    "QUANT_CHOICES",
    "Clip",
    "Generation",
    "LoadOptions",
    "ModelAdapter",
    "Prediction",
    "Sampling",
    "check_label_score",
]

#: How a label's continuation is ranked (see :attr:`LoadOptions.label_score`).
LABEL_SCORES = ("sum", "mean")

QUANT_CHOICES = ("auto", "nf4", "8bit", "bf16", "fp16", "fp32")
DEVICE_CHOICES = ("auto", "cuda", "cpu")


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


class ModelAdapter(ABC):
    """One model family: load, score a closed label set, optionally generate.

    Subclasses set ``family``, declare what else they can do in ``provides`` (see
    :mod:`cuelab.core.models.capabilities`) and implement :meth:`load` and
    :meth:`score`. The older call shapes (:meth:`score_labels`, :meth:`generate_full`)
    build the request and stay for callers that hold a task prompt.
    """

    family: ClassVar[str] = ""
    #: What the family can do; checked against its methods by the capability tests.
    provides: ClassVar[frozenset[Capability]] = frozenset({Capability.SCORE})
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
    def score(self, request: ScoreRequest) -> list[Prediction]:
        """Score ``request.labels`` for its clip once per token variant.

        All variants share the clip's prefix (audio + ``request.shared``), which an
        adapter that can encodes once.

        Returns:
            One prediction per variant, in order.
        """

    def score_labels(
        self,
        clip: Clip,
        task: PromptTemplate,
        labels: Sequence[str],
        token_texts: Sequence[str | None],
    ) -> list[Prediction]:
        """Score ``labels`` for ``clip`` once per token variant (:meth:`score`'s request).

        Args:
            clip: the audio.
            task: the prompt template.
            labels: the closed label set.
            token_texts: concept-token texts, one per variant; None means audio only.
                All variants share the clip's prefix (audio + instruction).

        Returns:
            One prediction per entry of ``token_texts``, in order.
        """
        return self.score(ScoreRequest.from_prompt(clip, task, labels, token_texts))

    def generate(
        self,
        clip: Clip,
        task: PromptTemplate,
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
        task: PromptTemplate,
        token_text: str | None,
        max_new_tokens: int = 128,
        sampling: Sampling | None = None,
        stop: Sequence[str] | None = None,
    ) -> Generation:
        """A free answer with its prompt, decoding, finish reason and token count.

        Families that declare :attr:`Capability.GENERATE` answer it (their ``complete``);
        ``stop`` strings are honoured only by those that support them (remote servers).
        """
        if not generates(self):
            raise ModelError(f"model family {self.family!r} cannot generate free text")
        request = GenerateRequest.from_prompt(clip, task, token_text, max_new_tokens,
                                              sampling, stop)  # fmt: skip
        return self.complete(request)

    def prompt_text(
        self, task: PromptTemplate, labels: Sequence[str], token_text: str | None
    ) -> str | None:
        """The exact text the model is given for a variant (None: no text prompt)."""
        return None

    def describe(self) -> dict[str, object]:
        """Provenance for run.json: family, location, hash/revision, quant, device, dtype."""
        return {"family": self.family}

    def unload(self) -> None:  # noqa: B027 - optional hook, nothing to free by default
        """Free the model's memory; the adapter is unusable afterwards."""
