"""Answer one SSEU clip in one mode: generate or score, parse, then match to classes.

The SSEU task kind (:class:`cuelab.core.runs.sseu.SseuKind`) answers each clip
through here: what a model is asked per mode, how a sampled draw is seeded, how
free text becomes scene and event confidences. It lives beside its task, below
``runs/``: what it reads of a run's configuration is :class:`AnswerOptions`,
which :class:`~cuelab.core.runs.config.RunConfig` satisfies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cuelab.core.errors import ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip, ModelAdapter, Sampling
from cuelab.core.models.capabilities import (
    SimilarityRequest,
    answers_from_manifest,
    scores_similarity,
)
from cuelab.core.tasks.prompts import TaskPrompt
from cuelab.core.tasks.sseu.answers import FIELDS, ParsedAnswer
from cuelab.core.tasks.sseu.matching import Matcher
from cuelab.core.tasks.sseu.prompts import TASK_FIELDS, zero_shot_tasks
from cuelab.core.tasks.sseu.score import manifest_answer

ZERO_SHOT = "zero-shot"


class AnswerOptions(Protocol):
    """The options of a run that answering reads (a :class:`~cuelab.core.runs.config.RunConfig`)."""

    @property
    def sseu_tasks(self) -> tuple[str, ...]:
        """The independent tasks asked (``asr``, ``asc``, ``at``)."""
        ...

    @property
    def joint(self) -> bool:
        """Whether the joint prompt is asked."""
        ...

    @property
    def cot(self) -> bool:
        """Whether the chain-of-thought prompt is asked."""
        ...

    @property
    def sample(self) -> bool:
        """Whether answers are drawn (else greedy)."""
        ...

    @property
    def max_new_tokens(self) -> int:
        """The generation limit of an answer."""
        ...

    @property
    def cot_max_new_tokens(self) -> int:
        """The generation limit of a chain-of-thought answer."""
        ...

    def sampling(self, seed: int) -> Sampling | None:
        """The draw of one generation (None: greedy)."""
        ...


class AnswerSetup(Protocol):
    """What answering needs of a run's setup (:class:`cuelab.core.runs.sseu.SseuSetup`)."""

    @property
    def scenes(self) -> tuple[str, ...]:
        """The scene classes, in column order."""
        ...

    @property
    def events(self) -> tuple[str, ...]:
        """The event classes, in column order."""
        ...

    @property
    def prompts(self) -> dict[str, TaskPrompt]:
        """The prompt of each task the run asks."""
        ...


def fields_of(tasks: Sequence[str]) -> tuple[str, ...]:
    """The answer fields a list of SSEU tasks asks for, in ``FIELDS`` order."""
    asked = {f for t in tasks for f in TASK_FIELDS[t]}
    return tuple(f for f in FIELDS if f in asked)


def run_tasks(config: AnswerOptions) -> list[str]:
    """Every task a run asks: the chosen SSEU tasks, then ``joint`` and ``cot`` if enabled."""
    return [
        *config.sseu_tasks,
        *(["joint"] if config.joint else []),
        *(["cot"] if config.cot else []),
    ]


@dataclass(frozen=True)
class ModeResult:
    """One clip's answer in one mode, parsed and matched.

    Attributes:
        tasks: the tasks asked (``asr;asc;at``, ``joint``, ``cot``, or CLAP's ``asc;at``).
        answer: the parsed text fields and which of them could not be parsed.
        scene: the scene class chosen, or None (not asked, unparsed or unmatched).
        scene_probs: per scene, the matcher's score or the model's probability.
        event_probs: per event, the confidence used for mAP.
        raw: the generated text per task.
        finish: per generated task, how generation ended (``stop``, ``length``, or ""
            when the family does not say) and how many tokens it took.
    """

    tasks: tuple[str, ...]
    answer: ParsedAnswer
    scene: str | None = None
    scene_probs: dict[str, float] = field(default_factory=dict)
    event_probs: dict[str, float] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    finish: dict[str, tuple[str, int]] = field(default_factory=dict)

    def finish_reason(self) -> str:
        """``stop``, or ``task:reason`` per task when tasks ended differently."""
        reasons = {reason for reason, _ in self.finish.values()}
        if len(reasons) <= 1:
            return next(iter(reasons), "")
        return ";".join(f"{t}:{r}" for t, (r, _) in self.finish.items())

    def generated_tokens(self) -> int | None:
        """Tokens generated over the mode's tasks (None when nothing was generated)."""
        return sum(n for _, n in self.finish.values()) if self.finish else None


def draws(adapter: object, mode: str, config: AnswerOptions) -> bool:
    """True when ``adapter`` (a class or instance) draws one answer per seed in ``mode``."""
    return config.sample and mode != ZERO_SHOT and not answers_from_manifest(adapter)


def draw_seed(seed: int, utt_id: str, task: str) -> int:
    """The seed of one generation: the run seed, the clip and the prompt, hashed.

    Passing the run seed itself to every clip would start every clip's draw from the
    same random numbers, correlating the clips within a seed and inflating the spread
    over seeds; hashing keeps each draw reproducible yet independent of the others.
    """
    digest = hashlib.sha256(f"{seed}\0{utt_id}\0{task}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def mode_tasks(mode: str, config: AnswerOptions) -> tuple[str, ...]:
    """The tasks one mode asks."""
    if mode == "independent":
        return tuple(config.sseu_tasks)
    if mode == ZERO_SHOT:
        asked = fields_of(run_tasks(config))
        return zero_shot_tasks(asked)
    return (mode,)


class Answerer:
    """Answers one clip in one mode with a loaded model, then matches the answer."""

    def __init__(
        self,
        adapter: ModelAdapter,
        config: AnswerOptions,
        setup: AnswerSetup,
        matchers: tuple[Matcher | None, Matcher | None],
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.setup = setup
        self.scene_matcher, self.event_matcher = matchers

    def answer(
        self, clip: Clip, mode: str, control: JobControl, seed: int | None = None
    ) -> ModeResult:
        """Generate (or read, or score) the clip's answer in ``mode``.

        ``seed`` is the run seed of a sampled answer (see :func:`draws`); greedy
        answers, the oracle and CLAP ignore it.
        """
        tasks = mode_tasks(mode, self.config)
        asked = fields_of(tasks)
        if mode == ZERO_SHOT:
            return self._zero_shot(clip, tasks, asked)
        raw: dict[str, str] = {}
        finish: dict[str, tuple[str, int]] = {}
        if answers_from_manifest(self.adapter):
            answer: ParsedAnswer = manifest_answer(clip.meta, asked)
        else:
            answer = self._generate(clip, tasks, raw, finish, control, seed)
        result = self._matched(tasks, answer, raw)
        result.finish.update(finish)
        return result

    def _generate(
        self,
        clip: Clip,
        tasks: Sequence[str],
        raw: dict[str, str],
        finish: dict[str, tuple[str, int]],
        control: JobControl,
        seed: int | None,
    ) -> ParsedAnswer:
        from cuelab.core.tasks.sseu.answers import parse_sseu_answer

        merged: ParsedAnswer | None = None
        for task in tasks:
            control.check()
            limit = self.config.cot_max_new_tokens if task == "cot" else self.config.max_new_tokens
            draw = None
            if self.config.sample:
                if seed is None:
                    raise ModelError("a sampled SSEU answer needs its run seed")
                draw = self.config.sampling(draw_seed(seed, clip.utt_id, task))
            out = self.adapter.generate_full(clip, self.setup.prompts[task], None, limit, draw)
            text = out.text
            raw[task] = text
            finish[task] = (out.finish_reason, out.tokens)
            parsed = parse_sseu_answer(task, text)
            merged = parsed if merged is None else merged.merge(parsed)
        assert merged is not None  # every mode has at least one task
        return merged

    def _matched(
        self, tasks: tuple[str, ...], answer: ParsedAnswer, raw: dict[str, str]
    ) -> ModeResult:
        scenes, events = self.setup.scenes, self.setup.events
        scene, scene_probs, event_probs = None, {}, {}
        if "scene" in answer.asked and self.scene_matcher is not None:
            scene_probs = dict.fromkeys(scenes, 0.0)
            if answer.scene is not None:
                match = self.scene_matcher.match(answer.scene)
                scene, scene_probs = match.label, dict(match.scores)
        if "events" in answer.asked and self.event_matcher is not None:
            event_probs = dict.fromkeys(events, 0.0)
            if answer.events:
                event_probs = self.event_matcher.confidences(answer.events)
        return ModeResult(tasks, answer, scene, scene_probs, event_probs, raw)

    def _zero_shot(self, clip: Clip, tasks: tuple[str, ...], asked: tuple[str, ...]) -> ModeResult:
        scenes = self.setup.scenes if "scene" in asked else ()
        events = self.setup.events if "events" in asked else ()
        if not scores_similarity(adapter := self.adapter):
            raise ModelError(f"model family {adapter.family!r} has no audio-text similarity")
        scene_probs, event_probs = adapter.similarity(SimilarityRequest(clip, scenes, events))
        scene = max(scene_probs, key=lambda s: scene_probs[s]) if scene_probs else None
        # No text to parse: the scene and events fields are answered (scores), none unparsed.
        answer = ParsedAnswer(asked, scene="", events=(), source="scores")
        return ModeResult(tasks, answer, scene, dict(scene_probs), dict(event_probs))
