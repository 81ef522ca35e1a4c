"""Model families that run in their own environment, behind a worker process.

``ms-clap:/models/CLAP_weights_2023.pth`` starts ``worker/main.py`` with the
``ms-clap`` environment's Python (``cuelab env create ms-clap``), greets it
(``hello``: protocol and package versions), loads the checkpoint there and
then sends one request per clip. Audio goes over at the model's own rate
(44.1 kHz for MS-CLAP 2023, 48 kHz for LAION-CLAP), resampled here once.

Contrastive families score label prompts (``a person speaking in a {label}
voice``) and SSEU scenes (softmax over the scaled similarities) and events
(sigmoid of the cosine), exactly as the in-process ``clap`` family does. They
read no instruction, so concept tokens do not reach them.

A worker that dies, hangs or breaks the protocol is stopped; with
``LoadOptions.worker_restarts`` (1 in batch runs) a new one is started and the
same request is sent again, so a run loses and doubles nothing.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cuelab.core import errors
from cuelab.core.audio.io import resample
from cuelab.core.errors import ModelError
from cuelab.core.models.base import (
    Clip,
    Generation,
    LoadOptions,
    ModelAdapter,
    Prediction,
)
from cuelab.core.models.capabilities import (
    Capability,
    GenerateRequest,
    PromptTemplate,
    ScoreRequest,
    SimilarityRequest,
    SimilarityResult,
)
from cuelab.core.models.clap import EVENT_TEMPLATE, LABEL_TEMPLATE, SCENE_TEMPLATE, label_words
from cuelab.core.models.isolated import envs
from cuelab.core.models.isolated.client import WorkerCommand, WorkerCrashed, WorkerProcess
from cuelab.core.models.isolated.recipes import CONTRASTIVE, GENERATIVE, Recipe, get_recipe
from cuelab.core.models.isolated.worker import protocol

log = logging.getLogger(__name__)


#: Seconds a worker may take to start and load its model (``CUELAB_WORKER_STARTUP_TIMEOUT``).
STARTUP_TIMEOUT = 900.0


def _seconds(variable: str, default: float) -> float:
    """A timeout from the environment, else ``default``."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ModelError(f"${variable} must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ModelError(f"${variable} must be above 0, got {text!r}")
    return value


#: Shown with a contrastive family's predictions: it has no prompt to carry tokens.
TOKENS_NOT_APPLICABLE = "concept tokens not applicable: {family} reads no instruction"

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl", ".pickle")

#: How many files of a LOCATION folder the pickle gate reads before it gives up.
MAX_CHECKED_FILES = 5000


def sniff_weights(path: Path) -> str:
    """What a weights file holds, from its first bytes: ``safetensors``, ``pickle`` or ``other``.

    safetensors starts with an 8-byte little-endian header length and a JSON
    object; ``torch.save`` writes a zip (its data.pkl is a pickle), older torch a
    tar or a bare pickle (protocol 2 to 5 starts ``0x80 0x02``..``0x80 0x05``).
    The suffix is not trusted: an empty ``decoy.safetensors`` is ``other``.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return "other"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device is never read
            return "other"
        head = os.pread(fd, 512, 0)
    except OSError:
        return "other"
    finally:
        os.close(fd)
    if len(head) >= 9:
        size = int.from_bytes(head[:8], "little")
        if 2 <= size <= info.st_size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head[:4] == b"PK\x03\x04" or head[257:262] == b"ustar":
        return "pickle"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    return "other"


def _weight_files(location: Path) -> list[Path]:
    """The files a worker could load from ``location`` (itself, or every file below it)."""
    if not location.is_dir():
        return [location] if location.exists() else []
    found: list[Path] = []
    for folder, dirs, names in os.walk(location, followlinks=True):
        if len(Path(folder).relative_to(location).parts) >= 4:
            dirs[:] = []  # deeper folders (or a link loop) are not walked
        found.extend(Path(folder) / name for name in sorted(names))
        if len(found) > MAX_CHECKED_FILES:
            raise ModelError(
                f"{location} holds more than {MAX_CHECKED_FILES} files; point LOCATION at "
                "the checkpoint itself"
            )
    return found


def check_safety(recipe: Recipe, location: str, options: LoadOptions) -> None:
    """Refuse pickled weights without ``allow_pickle`` and remote code without ``trust_remote_code``.

    Checked here, before a worker starts, on what the worker would load: LOCATION
    with its symbolic links resolved, and every file in it when it is a folder. A
    file counts as a pickle by its content (zip, tar or pickle bytes), or by a
    pickle suffix when its content is not safetensors; a safetensors file beside a
    pickle does not make the pickle safe.
    """
    if recipe.remote_code and not options.trust_remote_code:
        raise ModelError(
            f"{recipe.family} runs the release's own code",
            subject=recipe.family,
            remedy=errors.TRUST_REMOTE_CODE,
        )
    if options.allow_pickle:
        return
    given = Path(location).expanduser()
    for path in _weight_files(given):
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as exc:  # a link loop
            raise ModelError(f"{path}: its links cannot be followed ({exc})") from None
        kind = sniff_weights(real)
        suffix_says = (
            real.suffix.lower() in PICKLE_SUFFIXES or path.suffix.lower() in PICKLE_SUFFIXES
        )
        if kind == "pickle" or (suffix_says and kind != "safetensors"):
            shown = path if real == path else f"{path} (a link to {real})"
            named = " named like safetensors" if path.suffix == ".safetensors" else ""
            raise ModelError(
                f"{shown} is a pickle checkpoint{named}: loading it can run code from the file",
                subject=path,
                remedy=errors.ALLOW_PICKLE,
            )


class WorkerAdapter(ModelAdapter):
    """A model served by a worker in its family's environment."""

    scoring_method: ClassVar[str] = "similarity"
    recorded_only: ClassVar[tuple[str, ...]] = ("env_path",)

    def __init__(
        self,
        command: WorkerCommand,
        location: str,
        options: LoadOptions,
        recipe_digest: str = "",
    ) -> None:
        self.command = command
        self.location = location
        self.options = options
        self.recipe_digest = recipe_digest
        self.restarts_left = max(0, int(options.worker_restarts))
        self.restarts = 0
        self.worker: WorkerProcess | None = None
        self.info: dict[str, Any] = {}
        self.packages: dict[str, str] = {}
        self.python = ""
        self._start()
        self.sample_rate = int(self.info.get("sample_rate") or 16000)

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> WorkerAdapter:
        """Start a worker in the family's environment and load ``location`` there."""
        recipe = get_recipe(cls.family)
        if not recipe.worker:
            raise ModelError(
                f"{cls.family}: CueLab ships the recipe of its environment, but its worker "
                "handler is not written yet"
            )
        check_safety(recipe, location, options)
        python, _ = envs.require_ready(cls.family)
        options.progress(f"starting the {cls.family} worker")
        command = WorkerCommand(str(python), cls.family, recipe.handler, recipe.handler_path)
        return cls(command, str(Path(location).expanduser()), options, recipe.digest())

    # ------------------------------------------------------------------ the worker

    def _start(self) -> None:
        startup = _seconds("CUELAB_WORKER_STARTUP_TIMEOUT", STARTUP_TIMEOUT)
        worker = WorkerProcess(
            self.command,
            call_timeout=_seconds("CUELAB_WORKER_TIMEOUT", self.options.request_timeout),
            startup_timeout=startup,
            offline=self.options.local_files_only,
        )
        hello = worker.start()
        try:
            info = worker.call(
                "load",
                {
                    "location": self.location,
                    "options": {
                        "device": self.options.device,
                        "quant": self.options.quant,
                        "allow_pickle": self.options.allow_pickle,
                        "trust_remote_code": self.options.trust_remote_code,
                    },
                },
                timeout=startup,
            )
        except ModelError:
            worker.kill()
            raise
        self.worker = worker
        self.info = info
        self.python = str(hello.get("python", ""))
        self.packages = dict(hello.get("packages") or {})

    def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Send a request; a crashed worker is restarted (when allowed) and asked again."""
        if self.worker is None:
            raise ModelError(f"model {self.location} was unloaded")
        try:
            return self.worker.call(op, args)
        except WorkerCrashed as exc:
            if self.restarts_left <= 0:
                raise
            self.restarts_left -= 1
            self.restarts += 1
            log.warning("%s; starting a new worker and sending %s again", exc, op)
            self.worker = None
            self._start()
            assert self.worker is not None
            return self.worker.call(op, args)

    def audio_payload(self, clip: Clip) -> dict[str, Any]:
        """The clip at the model's rate, as float32 bytes."""
        audio = resample(np.asarray(clip.audio, dtype=np.float32), clip.sr, self.sample_rate)
        return protocol.audio_payload(audio.astype("<f4").tobytes(), self.sample_rate)

    def describe(self) -> dict[str, object]:
        """Provenance: the checkpoint, the worker's details and its environment's packages."""
        return {
            "family": self.family,
            "location": self.location,
            "checkpoint": self.info.get("details", {}),
            "sample_rate": self.sample_rate,
            "device": self.options.device,
            "recipe": self.recipe_digest,
            "protocol": protocol.PROTOCOL_VERSION,
            "python": self.python,
            "packages": self.packages,
            "env_path": str(Path(self.command.python).parent.parent),
        }

    def unload(self) -> None:
        """Close the worker."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()

    def __del__(self) -> None:  # a forgotten adapter must not leave a process behind
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.kill()


class ContrastiveWorkerAdapter(WorkerAdapter):
    """Audio-text similarity models: zero-shot emotion labels and SSEU scenes / events."""

    provides: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SCORE, Capability.SIMILARITY, Capability.LABEL_TEXTS}
    )
    reads_tokens: ClassVar[bool] = False
    #: How an emotion label becomes a prompt (ParaCLAP: the template it was trained with).
    default_label_template: ClassVar[str] = LABEL_TEMPLATE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label_template = self.default_label_template
        self.scene_template = SCENE_TEMPLATE
        self.event_template = EVENT_TEMPLATE

    def label_prompts(self, labels: Sequence[str]) -> dict[str, str]:
        """The text each label is scored with."""
        return {label: self.label_template.format(label=label) for label in labels}

    def token_note(self) -> str:
        """Why the concept tokens change nothing for this family."""
        return TOKENS_NOT_APPLICABLE.format(family=self.family)

    def embed_audio(self, clip: Clip) -> np.ndarray:
        """The clip's audio embedding (the model's own, not normalised)."""
        out = self.call("embed_audio", {"audio": self.audio_payload(clip)})
        return np.asarray(out["embedding"], dtype=np.float64)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """One text embedding per row (the model's own, not normalised)."""
        out = self.call("embed_text", {"texts": list(texts)})
        return np.asarray(out["embeddings"], dtype=np.float64).reshape(len(texts), -1)

    def similarities(self, clip: Clip, texts: Sequence[str]) -> tuple[list[float], list[float]]:
        """``(scaled logits, cosines)`` of the clip against ``texts``."""
        out = self.call("score_labels", {"audio": self.audio_payload(clip), "texts": list(texts)})
        logits = [float(x) for x in out.get("logits", [])]
        cosine = [float(x) for x in out.get("cosine", [])]
        if len(logits) != len(texts) or len(cosine) != len(texts):
            raise ModelError(f"{self.family} worker scored {len(logits)} of {len(texts)} texts")
        if not all(math.isfinite(x) for x in logits + cosine):
            raise ModelError(f"{self.family} worker returned a non-finite score")
        return logits, cosine

    def score(self, request: ScoreRequest) -> list[Prediction]:
        """Softmax over the label prompts; the same for every token variant."""
        clip, labels = request.clip, request.labels
        prompts = self.label_prompts(labels)
        logits, _ = self.similarities(clip, [prompts[label] for label in labels])
        probs = _softmax(logits)
        best = labels[int(np.argmax(probs))]
        return [Prediction(best, dict(zip(labels, probs))) for _ in request.token_texts]

    def score_sseu(
        self, clip: Clip, scenes: Sequence[str], events: Sequence[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """:meth:`similarity` for ``scenes`` and ``events``."""
        return self.similarity(SimilarityRequest(clip, tuple(scenes), tuple(events)))

    def similarity(self, request: SimilarityRequest) -> SimilarityResult:
        """Scene softmax over scaled similarities, event sigmoid of the cosine (SSEU-Bench)."""
        clip, scenes, events = request.clip, request.scenes, request.events
        if not scenes and not events:
            return {}, {}
        texts = [self.scene_template.format(label=label_words(s)) for s in scenes]
        texts += [self.event_template.format(label=label_words(e)) for e in events]
        logits, cosine = self.similarities(clip, texts)
        n = len(scenes)
        scene_probs = _softmax(logits[:n]) if n else []
        event_probs = [1.0 / (1.0 + math.exp(-c)) for c in cosine[n:]]
        return dict(zip(scenes, scene_probs)), dict(zip(events, event_probs))

    def describe(self) -> dict[str, object]:
        """Provenance, with the prompt templates."""
        out = super().describe()
        out.update(
            label_template=self.label_template,
            scene_template=self.scene_template,
            event_template=self.event_template,
        )
        return out


class GenerativeWorkerAdapter(WorkerAdapter):
    """Audio language models that answer in free text (Pengi, LTU-AS, Kimi-Audio, Step-Audio 2)."""

    scoring_method: ClassVar[str] = "generate"
    provides: ClassVar[frozenset[Capability]] = frozenset({Capability.SCORE, Capability.GENERATE})

    def complete(self, request: GenerateRequest) -> Generation:
        """One free answer from the worker."""
        prompt, sampling = request.instruction, request.sampling
        args: dict[str, Any] = {
            "audio": self.audio_payload(request.clip),
            "prompt": prompt,
            "max_new_tokens": int(request.max_new_tokens),
            "sampling": None if sampling is None else sampling.describe() | {"seed": sampling.seed},
        }
        out = self.call("generate", args)
        return Generation(
            text=str(out.get("text", "")).strip(),
            finish_reason=str(out.get("finish_reason", "")),
            tokens=int(out.get("tokens", 0)),
            prompt=str(out.get("prompt", prompt)),
            decoding=dict(out.get("decoding") or {}),
        )

    def score(self, request: ScoreRequest) -> list[Prediction]:
        """A generated answer per variant, mapped to a label (unparsed when it names none)."""
        from cuelab.core.models.scoring import parse_answer

        labels = request.labels
        out = []
        for text in request.instructions:
            gen = self.complete(GenerateRequest(request.clip, text, 32))
            label = parse_answer(gen.text, labels)
            out.append(
                Prediction(label, {}, gen.text, label is None, "generate", gen.finish_reason)
            )
        return out

    def prompt_text(
        self, task: PromptTemplate, labels: Sequence[str], token_text: str | None
    ) -> str | None:
        """The instruction sent to the worker (the family adds its own chat template)."""
        return task.render(labels, token_text)


def _softmax(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


#: The adapter base of each recipe kind; a family's class is made from its recipe.
KIND_BASES: dict[str, type[WorkerAdapter]] = {
    CONTRASTIVE: ContrastiveWorkerAdapter,
    GENERATIVE: GenerativeWorkerAdapter,
}


def adapter_class(family: str) -> type[WorkerAdapter]:
    """The adapter of an isolated family, made from its recipe (no per-family class).

    A new family is one recipe (:mod:`cuelab.core.models.isolated.recipes`) plus one
    worker handler: the registry, ``cuelab models``, ``cuelab env`` and the worker's
    dispatch all read the recipe.

    Raises:
        ModelError: ``family`` has no recipe.
    """
    return _class_for(get_recipe(family))


@functools.cache
def _class_for(recipe: Recipe) -> type[WorkerAdapter]:
    base = KIND_BASES.get(recipe.kind)
    if base is None:
        raise ModelError(f"{recipe.family}: unknown recipe kind {recipe.kind!r}")
    attrs: dict[str, Any] = {
        "family": recipe.family,
        "__doc__": recipe.summary or f"The isolated family {recipe.family}.",
        "__module__": __name__,
    }
    if recipe.label_template:
        attrs["default_label_template"] = recipe.label_template
    name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", recipe.family))
    return type(f"{name}Adapter", (base,), attrs)
