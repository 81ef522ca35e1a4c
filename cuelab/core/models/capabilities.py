"""What an adapter can do, declared, and the requests that carry the work to it.

The engines, the CLI and the window used to probe adapters for a method by its
name (``score_sseu``, ``request_messages``): a misspelt name or a renamed method
failed silently, and nothing told a new family what to offer. Here
each family declares its :class:`Capability` set (``ModelAdapter.provides``), each
capability is a :class:`typing.Protocol` that mypy checks at the call sites, and
the guards (:func:`generates`, :func:`scores_similarity`, ...) narrow an adapter to
the protocol it declared. ``tests/core/models/test_capabilities.py`` checks that
every registered family implements what it declares.

Requests follow lm-evaluation-harness's split (``LM.loglikelihood(requests)``):
the task layer renders its prompt and builds a request; the adapter answers it and
never sees the task. A :class:`ScoreRequest` carries every token variant of one
clip together, with the audio-only instruction they all start with, so an adapter
encodes the shared prefix (audio + instruction) once.

This module imports nothing heavy (the window imports it at start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeGuard, runtime_checkable

from cuelab.core.models.shapes import Clip, Generation, Sampling


class PromptTemplate(Protocol):
    """What the models need of a task prompt: its labels and how it renders.

    :class:`cuelab.core.tasks.prompts.TaskPrompt` implements it; models sit below the
    tasks and never import them, so they name this protocol instead.
    """

    @property
    def labels(self) -> tuple[str, ...]: ...

    def render(self, labels: Sequence[str] | None = None, token_text: str | None = None) -> str:
        """The instruction text for ``labels``, with the token line when given."""
        ...


@dataclass(frozen=True, eq=False)
class ScoreRequest:
    """Score a closed label set for one clip, once per token variant.

    Attributes:
        clip: the audio.
        labels: the closed label set.
        token_texts: concept-token texts, one per variant (None: audio only); models that
            read tokens directly (the reference classifier) use these.
        instructions: the rendered instruction of each variant, in order.
        shared: the rendered audio-only instruction: the prefix every variant starts with.
    """

    clip: Clip
    labels: tuple[str, ...]
    token_texts: tuple[str | None, ...]
    instructions: tuple[str, ...]
    shared: str

    @classmethod
    def from_prompt(
        cls,
        clip: Clip,
        prompt: PromptTemplate,
        labels: Sequence[str],
        token_texts: Sequence[str | None],
    ) -> ScoreRequest:
        """Render ``prompt`` for every variant of ``clip``."""
        return cls(
            clip=clip,
            labels=tuple(labels),
            token_texts=tuple(token_texts),
            instructions=tuple(prompt.render(labels, t) for t in token_texts),
            shared=prompt.render(labels, None),
        )


@dataclass(frozen=True, eq=False)
class GenerateRequest:
    """Generate one free answer.

    Attributes:
        clip: the audio.
        instruction: the rendered instruction (its token line included).
        max_new_tokens: generation limit.
        sampling: None for greedy decoding; otherwise a seeded, reproducible draw.
        stop: stop strings (honoured by the families that support them: remote servers).
    """

    clip: Clip
    instruction: str
    max_new_tokens: int = 128
    sampling: Sampling | None = None
    stop: tuple[str, ...] | None = None

    @classmethod
    def from_prompt(
        cls,
        clip: Clip,
        prompt: PromptTemplate,
        token_text: str | None,
        max_new_tokens: int = 128,
        sampling: Sampling | None = None,
        stop: Sequence[str] | None = None,
    ) -> GenerateRequest:
        """Render ``prompt`` (its own labels) with ``token_text``."""
        return cls(
            clip=clip,
            instruction=prompt.render(prompt.labels, token_text),
            max_new_tokens=max_new_tokens,
            sampling=sampling,
            stop=tuple(stop) if stop is not None else None,
        )


@dataclass(frozen=True, eq=False)
class SimilarityRequest:
    """Audio–text similarity for SSEU's zero-shot mode: scenes exclusive, events not.

    Attributes:
        clip: the audio.
        scenes: scene classes (a softmax over them); empty when not asked.
        events: event classes (one confidence each); empty when not asked.
    """

    clip: Clip
    scenes: tuple[str, ...] = ()
    events: tuple[str, ...] = ()


#: ``(scene probabilities, event confidences)``, each keyed by class.
SimilarityResult = tuple[dict[str, float], dict[str, float]]


class Capability(str, Enum):
    """What a family can do; ``ModelAdapter.provides`` declares a set of these."""

    #: closed-set label scoring (every adapter: :meth:`ModelAdapter.score`)
    SCORE = "score"
    #: free text (:class:`TextGenerator`)
    GENERATE = "generate"
    #: audio–text similarity, CLAP style (:class:`AudioTextSimilarity`)
    SIMILARITY = "similarity"
    #: labels scored as fixed texts; the instruction and its tokens never reach the model
    #: (:class:`LabelTexts`)
    LABEL_TEXTS = "label-texts"
    #: served over HTTP: request figures and the request's messages (:class:`ServedModel`)
    SERVED = "served"
    #: answers are the manifest's truth (the oracle): nothing is generated or drawn
    MANIFEST_ANSWERS = "manifest-answers"


@runtime_checkable
class TextGenerator(Protocol):
    """A family that generates free text from a :class:`GenerateRequest`."""

    def complete(self, request: GenerateRequest) -> Generation: ...


@runtime_checkable
class AudioTextSimilarity(Protocol):
    """A family that scores audio against class texts (CLAP and its kin)."""

    def similarity(self, request: SimilarityRequest) -> SimilarityResult: ...


@runtime_checkable
class LabelTexts(Protocol):
    """A family that scores each label as a fixed text (contrastive models)."""

    def label_prompts(self, labels: Sequence[str]) -> dict[str, str]:
        """The text each label is scored with."""
        ...

    def token_note(self) -> str:
        """Why the concept tokens change nothing for this family."""
        ...


@runtime_checkable
class ServedModel(Protocol):
    """A family behind a server: its request figures and the messages it sends."""

    def progress_note(self) -> str:
        """Request rate, retries and failures so far."""
        ...

    def request_messages(
        self, task: PromptTemplate, labels: Sequence[str], token_text: str | None
    ) -> list[dict[str, Any]]:
        """The chat messages a variant is sent with (audio named, not included)."""
        ...


#: Each capability's protocol, for the test that checks declarations against methods.
PROTOCOLS: dict[Capability, type] = {
    Capability.GENERATE: TextGenerator,
    Capability.SIMILARITY: AudioTextSimilarity,
    Capability.LABEL_TEXTS: LabelTexts,
    Capability.SERVED: ServedModel,
}


def provided(adapter: object) -> frozenset[Capability]:
    """The capabilities ``adapter`` (an adapter class or instance) declares."""
    return frozenset(getattr(adapter, "provides", frozenset()))


def can(adapter: object, capability: Capability) -> bool:
    """True when ``adapter`` (a class or instance) declares ``capability``."""
    return capability in provided(adapter)


def generates(adapter: object) -> TypeGuard[TextGenerator]:
    """True when ``adapter`` generates free text."""
    return can(adapter, Capability.GENERATE)


def scores_similarity(adapter: object) -> TypeGuard[AudioTextSimilarity]:
    """True when ``adapter`` scores audio–text similarity (SSEU's zero-shot mode)."""
    return can(adapter, Capability.SIMILARITY)


def has_label_texts(adapter: object) -> TypeGuard[LabelTexts]:
    """True when ``adapter`` scores labels as fixed texts (tokens cannot reach it)."""
    return can(adapter, Capability.LABEL_TEXTS)


def is_served(adapter: object) -> TypeGuard[ServedModel]:
    """True when ``adapter`` is served over HTTP."""
    return can(adapter, Capability.SERVED)


def answers_from_manifest(adapter: object) -> bool:
    """True when ``adapter``'s answers are the manifest's truth (the oracle)."""
    return can(adapter, Capability.MANIFEST_ANSWERS)
