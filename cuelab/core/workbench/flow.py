"""The workbench's two plain functions: analyse a clip, and predict one clip end to end.

:func:`analyse` is what the window runs in a worker when a clip or region is shown, and what
``cuelab predict --tokens auto`` runs before its model is loaded: openSMILE features, concept
scores and tokens. :func:`predict` is the whole ``cuelab predict`` flow (audio, optional edit,
tokens, model, scoring or generation) and returns the record ``--json`` prints, so the
command line and a script get the very same answer for the same inputs. Neither imports Qt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cuelab.core.models.capabilities import has_label_texts, is_served

if TYPE_CHECKING:
    from cuelab.core.cues import ClipFeatures, FeatureCache
    from cuelab.core.cues.concepts import ConceptResult
    from cuelab.core.cues.norms import NormsProfile
    from cuelab.core.cues.tokens import TokenSet
    from cuelab.core.models.base import Clip, Sampling

log = logging.getLogger(__name__)

#: Manifests looked for beside a clip (the window opens a folder through one of these).
NEARBY_MANIFESTS = ("manifest.csv", "cuelab-manifest.csv")


def make_clip(
    audio: np.ndarray,
    sr: int = 16000,
    name: str = "",
    features: ClipFeatures | None = None,
    meta: dict[str, str] | None = None,
) -> Clip:
    """The one way the workbench, the window's panels and ``cuelab predict`` build a
    :class:`~cuelab.core.models.base.Clip`, so what a model is handed (samples, rate, name,
    the features already computed, the manifest fields) is the same wherever it is asked."""
    from cuelab.core.models.base import Clip

    return Clip(audio=audio, sr=int(sr), utt_id=name, features=features, meta=dict(meta or {}))


def segment(audio: np.ndarray | None, sr: int, region: tuple[float, float] | None) -> np.ndarray:
    """The analysed samples of ``audio``: ``region`` (seconds), or all of it."""
    if audio is None:
        return np.zeros(0, dtype=np.float32)
    if region is None:
        return audio
    a, b = (round(t * sr) for t in region)
    return audio[a:b]


@dataclass(frozen=True)
class Analysis:
    """Features and concepts of one clip or region (its tokens are ``concepts.tokens``)."""

    features: ClipFeatures
    concepts: ConceptResult

    @property
    def tokens(self) -> TokenSet:
        """The clip's own (aligned) concept tokens."""
        return self.concepts.tokens


def analyse(
    audio: np.ndarray | None = None,
    sr: int = 16000,
    *,
    region: tuple[float, float] | None = None,
    path: str | Path | None = None,
    name: str = "<signal>",
    norms: NormsProfile | None = None,
    gender: str | None = None,
    cache: FeatureCache | None = None,
    check: Callable[[], None] | None = None,
    extract: Callable[..., ClipFeatures] | None = None,
) -> Analysis:
    """eGeMAPS features, concept scores and tokens of a clip (or its ``region``).

    Give the samples (``audio`` at ``sr``), or only a ``path``: a whole file is then
    analysed through the feature ``cache`` as a batch run reads it. ``check`` is called
    between the expensive steps so a cancelled job stops early. ``extract(samples, sr,
    name=...)`` computes the features of samples (default: ``extract_signal`` in this
    process; the window passes one that runs long clips in a child process).
    """
    from cuelab.core.cues import extract_file, extract_signal
    from cuelab.core.cues.concepts import concepts_for_features
    from cuelab.core.cues.norms import default_norms

    if audio is None:
        if path is None:
            raise ValueError("analyse needs the audio or its path")
        if region is None:  # a whole file: served from the cache when it is there
            feats = extract_file(path, cache=cache)
        else:
            from cuelab.core.audio.io import load_audio

            audio, sr = load_audio(path, sr=16000)
    if audio is not None:
        feats = (extract or extract_signal)(segment(audio, sr, region), sr, name=name)
    if check is not None:
        check()
    profile = norms if norms is not None else default_norms()
    return Analysis(feats, concepts_for_features(feats, profile, gender))


def manifest_gender(audio: str, manifest: str | None = None) -> tuple[str | None, str | None]:
    """The gender a manifest gives ``audio``, and the manifest's path; ``(None, None)`` if none.

    The window takes a clip's gender from the manifest it was opened from, so its tokens use
    the per-gender PITCH/FORMANTS edges; ``predict`` does the same with ``--manifest`` or a
    manifest beside the file. A named manifest must list the file; one found beside it that
    cannot be read or does not list it is passed over (logged).
    """
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
            log.info("predict: %s cannot be read; ignored", path)
            continue
        for row in rows:
            if Path(row.path).resolve() == target:
                return row.gender, str(path)
        if manifest:
            raise ManifestError(f"{manifest}: does not list {audio}")
    return None, None


@dataclass
class PredictRequest:
    """Everything ``cuelab predict`` is asked (its flags, already checked by the CLI).

    ``tokens`` is ``auto`` (computed from the audio), ``none`` or the token text itself;
    ``norms``, ``gender`` and ``manifest`` only apply to ``auto``. ``edit`` is the canonical
    text of an audio edit chain (``pitch=+2st``), rendered by ``engine``.
    """

    audio: str
    model: str
    quant: str = "auto"
    device: str = "auto"
    tokens: str = "auto"
    labels: str = "iemocap"
    norms: str | None = None
    gender: str | None = None
    manifest: str | None = None
    generate: bool = False
    max_new_tokens: int = 128
    sampling: Sampling | None = None
    think: bool = False
    allow_pickle: bool = False
    trust_remote_code: bool = False
    edit: str | None = None
    engine: str = "world"
    token_source: str = "edited"
    scoring: str = "auto"
    prompt_family: str | None = None
    label_score: str = "sum"
    concurrency: int | None = None


@dataclass(frozen=True)
class PredictResult:
    """The record ``cuelab predict --json`` prints, and the analysis its tokens came from."""

    record: dict[str, Any]
    analysis: Analysis | None = None


def _token_text(choice: str, analysis: Analysis | None) -> str | None:
    if analysis is not None:
        return str(analysis.concepts.text())
    choice = choice.strip()
    return None if choice.lower() == "none" else choice


def _prompt(model: Any, task: Any, labels: Any, tokens: str | None) -> Any:
    """The exact prompt text, or for a served model the request's messages (audio left out)."""
    text = model.prompt_text(task, labels, tokens)
    if text is None and is_served(model):
        return model.request_messages(task, labels, tokens)
    return text


def predict(req: PredictRequest, on_progress: Callable[[str], None] | None = None) -> PredictResult:
    """Load ``req.model``, score the label set (or generate) for ``req.audio``, unload.

    The order is the one that fails soonest and cheapest: the audio and its edit, then the
    norms profile and the features for ``--tokens auto``, and only then the model. The model
    is unloaded whatever happens (a worker process or GPU memory is freed).
    """
    from cuelab.core.audio.io import load_audio
    from cuelab.core.cues import FeatureCache
    from cuelab.core.cues.norms import load_norms
    from cuelab.core.models.base import LoadOptions
    from cuelab.core.models.registry import load_model
    from cuelab.core.models.scoring import parse_answer
    from cuelab.core.tasks.emotion import parse_labels
    from cuelab.core.tasks.prompts import load_task

    labels = parse_labels(req.labels)
    audio, sr = load_audio(req.audio, sr=16000)
    if req.edit is not None:
        from cuelab.core.audio.edit_engines import apply_edit

        audio = apply_edit(audio, sr, req.edit, req.engine)
    analysis, gender, gender_from = None, req.gender, None
    if req.tokens.strip().lower() == "auto":
        norms = load_norms(req.norms)  # a bad profile fails before features or the model
        if gender is None:
            gender, gender_from = manifest_gender(req.audio, req.manifest)
        if req.edit is not None and req.token_source == "edited":
            analysis = analyse(audio, sr, name=f"{req.audio} ({req.edit})", norms=norms,
                               gender=gender)  # fmt: skip
        else:
            analysis = analyse(path=req.audio, norms=norms, gender=gender, cache=FeatureCache())
    feats = analysis.features if analysis is not None else None
    if req.edit is not None and req.token_source == "original":
        feats = None  # the reference model would read the original's features as its audio
    tokens = _token_text(req.tokens, analysis)
    options = LoadOptions(
        quant=req.quant,
        device=req.device,
        allow_pickle=req.allow_pickle,
        trust_remote_code=req.trust_remote_code,
        think=req.think,
        on_progress=on_progress,
        scoring=req.scoring or "auto",
        prompt_family=req.prompt_family,
        label_score=req.label_score or "sum",
    )
    if req.concurrency is not None:
        options.concurrency = req.concurrency
    model = load_model(req.model, options)
    try:
        if model.sample_rate != sr and req.edit is None:  # CLAP hears the file at its own rate
            audio, sr = load_audio(req.audio, sr=model.sample_rate)
        elif model.sample_rate != sr:
            from cuelab.core.audio.io import resample

            audio, sr = resample(audio, sr, model.sample_rate), model.sample_rate
        clip = make_clip(audio, sr, str(req.audio), feats, {"gender": gender or ""})
        record: dict[str, Any] = {"path": str(req.audio), "model": req.model, "tokens": tokens}
        if analysis is not None:
            record.update(gender=gender, norms=req.norms, edges=analysis.concepts.edges_used)
            if gender_from:
                record["gender_from"] = gender_from
        if req.think:
            record["think"] = True
        if req.edit is not None:
            record.update(edit=req.edit, engine=req.engine, token_source=req.token_source)
        if req.generate:
            task = load_task("ser_rationale", labels=labels)
            sampling = req.sampling
            out = model.generate_full(clip, task, tokens, req.max_new_tokens, sampling)
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
        if has_label_texts(model) and not req.generate:
            record["prompts"] = model.label_prompts(labels)  # label -> the text it was scored with
        if has_label_texts(model):
            record["tokens_note"] = model.token_note()
    finally:
        model.unload()
    return PredictResult(record, analysis)
