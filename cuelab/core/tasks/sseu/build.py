"""Build a speech-over-background evaluation set (SSEU-Bench style).

Every clean speech clip gets one background recording and one placement
(speech onset, background tail, where in the background the mix starts),
chosen from a seed, and is mixed at every SNR of the list. The output folder
holds the mixtures, ``manifest.csv`` (the data contract of
:mod:`cuelab.core.datasets.manifest`, plus SSEU columns), ``classes.json``
(the scene and event class lists the prompts offer) and ``build.json`` (the
configuration, so that a second build into the same folder either finishes
the same set or is refused).

Choices, made once here:

* **44.1 kHz output**, as SSEU-Bench mixes. Every model then gets the mix at
  its own rate when a run reads it: the ALMs at 16 kHz, CLAP at its feature
  extractor's 48 kHz (:attr:`cuelab.core.models.base.ModelAdapter.sample_rate`).
  The SNR is exact at the set's rate; resampling moves it by a hair only when
  a stem has energy above the model's Nyquist frequency. ``sr`` sets another
  rate.
* **Balanced scenes.** Backgrounds are dealt round-robin over a seeded
  shuffle of the speech clips, so every scene gets the same number of clips
  (±1) and mACC is not dominated by one scene. Placement is drawn per clip
  from a generator seeded by ``(seed, clip path)``.
* **References per SNR.** At ``+inf`` there is no background: scene and
  events are empty. At ``-inf`` there is no speech: the transcript is empty
  (the clip's words stay in ``source_transcript``). Events are the
  background's events whose time span overlaps the mixture; the foreground
  speaker is never an event (a babble background brings its own label).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cuelab.core import errors
from cuelab.core.audio.io import load_audio, write_audio
from cuelab.core.audio.mixing import DEFAULT_CROSSFADE_S, MAX_FINITE_SNR_DB, stem_paths
from cuelab.core.audio.snr_span import SNR_SPANS, SpanMix, mix_over
from cuelab.core.datasets.manifest import Manifest, ManifestRow, read_manifest
from cuelab.core.datasets.writer import write_manifest, write_text_atomic
from cuelab.core.errors import CueLabError, ManifestError
from cuelab.core.jobs import JobControl
from cuelab.core.paths import assets_dir

ASSETS = assets_dir()
DEMO_SPEECH = ASSETS / "demo" / "manifest.csv"
DEMO_BACKGROUNDS = ASSETS / "backgrounds" / "manifest.csv"
DEFAULT_SNRS: tuple[float, ...] = (10.0, 5.0, 0.0, -5.0, -10.0, math.inf, -math.inf)
DEFAULT_SR = 44100
DEFAULT_ONSET_RANGE = (0.5, 1.5)
CONFIG_FILE = "build.json"
CLASSES_FILE = "classes.json"
MANIFEST_FILE = "manifest.csv"
SCHEMA = 1
EXTRA_COLUMNS = (
    "utt_id",
    "speech_id",
    "transcript",
    "scene",
    "events",
    "event_times",
    "snr_db",
    "achieved_snr_db",
    "onset_s",
    "duration_s",
    "background",
    "background_scene",
    "background_offset_s",
    "source_transcript",
    "layout",
    "snr_over",
    "snr_speech_db",
    "snr_clip_db",
    "speech_span_s",
    "speech_cut_s",
)
LAYOUTS = ("per-speech", "per-background")


class SseuBuildError(CueLabError):
    """An SSEU set cannot be built: bad inputs or an output folder in the way."""


@dataclass(frozen=True)
class EventSpan:
    """One occurrence of a sound event, in seconds (``end`` may be ``inf``)."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Background:
    """A background recording from the backgrounds manifest."""

    path: Path
    rel_path: str
    scene: str
    spans: tuple[EventSpan, ...]
    description: str = ""

    @property
    def events(self) -> tuple[str, ...]:
        """Event labels in the order the manifest names them."""
        return tuple(dict.fromkeys(s.label for s in self.spans))


@dataclass(frozen=True)
class Placement:
    """Where one speech clip goes: its background, onset, tail and start in the background."""

    background: int
    onset_s: float
    tail_s: float
    offset_fraction: float


@dataclass
class BuildConfig:
    """Everything that decides a set's content; stored as ``build.json``."""

    speech_sha256: str
    backgrounds_sha256: str
    snrs: list[str]
    seed: int
    sr: int
    audio_format: str
    onset_range_s: list[float]
    stems: bool
    schema: int = SCHEMA


@dataclass
class BuildResult:
    """What a build wrote."""

    out_dir: Path
    manifest: Path
    rows: int
    scenes: list[str]
    events: list[str]
    written: int = 0
    reused: int = 0
    config: dict[str, object] = field(default_factory=dict)


def snr_tag(snr: float) -> str:
    """``+10``, ``-5``, ``+0``, ``+inf``, ``-inf``: a file-name-safe SNR label."""
    return f"{snr:+g}"


def _parse_times(where: str, text: str) -> list[EventSpan]:
    spans = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        label, sep, times = part.rpartition("@")
        start, dash, end = times.partition("-")
        try:
            span = EventSpan(label.strip(), float(start), float(end))
        except ValueError:
            span = None
        if not sep or not dash or span is None or not span.label or not span.end > span.start:
            raise ManifestError(
                f"{where}, column 'event_times': '{part}' is not label@start-end in seconds"
            )
        spans.append(span)
    return spans


def read_build_inputs(
    speech_manifest: str | Path | None, backgrounds_manifest: str | Path | None, snr_over: str
) -> tuple[Manifest, list[Background], str]:
    """The speech manifest, the backgrounds and the backgrounds manifest's SHA-256 of a set.

    Shared by both layouts. Raises:
        SseuBuildError: an unknown SNR span.
        ManifestError: a speech row without a transcript, or a bad backgrounds manifest.
    """
    if snr_over not in SNR_SPANS:
        raise SseuBuildError(f"SNR span {snr_over!r} is not speech or clip")
    speech = read_manifest(speech_manifest or DEMO_SPEECH)
    bg_path = backgrounds_manifest or DEMO_BACKGROUNDS
    missing = [r.index for r in speech if not r.get("transcript")]
    if missing:
        raise ManifestError(f"{speech.path.name} row {missing[0]}, column 'transcript': empty")
    bg_manifest = read_manifest(bg_path)
    return speech, backgrounds_from(bg_manifest), bg_manifest.sha256


def read_backgrounds(path: str | Path) -> list[Background]:
    """Read a backgrounds manifest (``path, scene, events[, event_times, description]``).

    An event listed in ``events`` without times is taken to last the whole
    recording; one listed only in ``event_times`` is added.

    Raises:
        ManifestError: unreadable manifest, missing file, empty scene or bad times.
    """
    return backgrounds_from(read_manifest(path))


def backgrounds_from(manifest: Manifest) -> list[Background]:
    """The backgrounds of a manifest already read (see :func:`read_backgrounds`)."""
    out = []
    for row in manifest:
        where = f"{manifest.path.name} row {row.index}"
        scene = row.get("scene")
        if not scene:
            raise ManifestError(f"{where}, column 'scene': empty")
        timed = _parse_times(where, row.get("event_times"))
        timed_labels = {s.label for s in timed}
        untimed = [EventSpan(e, 0.0, math.inf) for e in row.events if e not in timed_labels]
        order = {e: i for i, e in enumerate([*row.events, *(s.label for s in timed)])}
        spans = sorted([*untimed, *timed], key=lambda s: (order[s.label], s.start))
        out.append(Background(row.path, row.rel_path, scene, tuple(spans), row.get("description")))
    return out


def _clip_seed(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def plan_placements(
    speech_keys: Sequence[str],
    n_backgrounds: int,
    seed: int,
    onset_range: tuple[float, float] = DEFAULT_ONSET_RANGE,
) -> dict[str, Placement]:
    """Seeded background and placement for each speech clip (by its manifest path).

    Backgrounds are dealt round-robin over a seeded shuffle of the sorted
    keys (balanced scenes); onset, tail and background start come from a
    generator seeded by the seed and the key alone.
    """
    keys = sorted(speech_keys)
    order = np.random.default_rng(seed).permutation(len(keys))
    lo, hi = onset_range
    plan = {}
    for rank, idx in enumerate(order.tolist()):
        rng = _clip_seed(seed, keys[idx])
        onset, tail, frac = rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform()
        plan[keys[idx]] = Placement(
            rank % n_backgrounds, round(float(onset), 3), round(float(tail), 3), float(frac)
        )
    return plan


def events_in_mix(
    spans: Sequence[EventSpan],
    bg_seconds: float,
    offset_s: float,
    mix_seconds: float,
    crossfade_s: float = DEFAULT_CROSSFADE_S,
) -> list[EventSpan]:
    """Event occurrences in mixture time, for a background started at ``offset_s``.

    Follows :func:`cuelab.core.audio.mixing.loop_to_length`: the background from
    ``offset_s`` on is repeated every ``piece − crossfade`` seconds when it is
    shorter than the mix. Only occurrences that overlap ``(0, mix_seconds)``
    by a positive amount are kept, clipped to it.
    """
    piece = bg_seconds - offset_s
    fade = min(crossfade_s, piece / 2.0)
    period = piece - fade if mix_seconds > piece else math.inf
    found = []
    base = 0.0
    while base < mix_seconds:
        for s in spans:
            start = max(0.0, s.start - offset_s + base, base)
            end = min(mix_seconds, s.end - offset_s + base, base + piece)
            if end > start:
                found.append(EventSpan(s.label, round(start, 3), round(end, 3)))
        base += period
    return sorted(found, key=lambda s: (s.start, s.label))


def _config_dict(
    config: BuildConfig, layout: str = "per-speech", snr_over: str = "speech"
) -> dict[str, object]:
    """build.json's content; the layout and SNR span only when not the first defaults.

    Sets built before ``--layout`` and ``--snr-over`` existed were per-speech sets
    measured over the speech; leaving the keys out for those keeps such a set
    completable by the same command.
    """
    out = asdict(config)
    if layout != "per-speech":
        out["layout"] = layout
    if snr_over != "speech":
        out["snr_over"] = snr_over
    return out


def _check_out_dir(out: Path, config: dict[str, object]) -> None:
    """Refuse a folder holding something else, or a set built with another configuration."""
    stored = out / CONFIG_FILE
    if stored.is_file():
        try:
            old = json.loads(stored.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SseuBuildError(f"{stored}: unreadable build configuration ({exc})") from exc
        if old != config:
            keys = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise SseuBuildError(
                f"{out}: holds an SSEU set built with a different configuration "
                f"({', '.join(keys)} differ)",
                subject=out,
                remedy=errors.NEW_OUTPUT_FOLDER,
            )
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SseuBuildError(f"{out}: exists and is not an SSEU set folder; choose an empty one")


def _fmt_db(value: float) -> str:
    return f"{value:g}" if math.isinf(value) else f"{value:.4f}"


def _class_lists(backgrounds: Sequence[Background]) -> tuple[list[str], list[str]]:
    scenes = sorted({b.scene for b in backgrounds})
    events = sorted({e for b in backgrounds for e in b.events})
    return scenes, events


class _Loader:
    """Backgrounds decoded once each."""

    def __init__(self, backgrounds: Sequence[Background], sr: int) -> None:
        self._bgs = backgrounds
        self._sr = sr
        self._cache: dict[int, np.ndarray] = {}

    def get(self, i: int) -> np.ndarray:
        if i not in self._cache:
            self._cache[i] = load_audio(self._bgs[i].path, sr=self._sr, min_seconds=0.0)[0]
        return self._cache[i]


def build_sseu(
    out_dir: str | Path,
    speech_manifest: str | Path | None = None,
    backgrounds_manifest: str | Path | None = None,
    snrs: Sequence[float] = DEFAULT_SNRS,
    seed: int = 0,
    *,
    sr: int = DEFAULT_SR,
    audio_format: str = "flac",
    onset_range: tuple[float, float] = DEFAULT_ONSET_RANGE,
    stems: bool = False,
    snr_over: str = "speech",
    control: JobControl | None = None,
) -> BuildResult:
    """Mix every speech clip over its seeded background at every SNR; write the set.

    This is the ``per-speech`` layout (one mixture per speech clip, speech-length
    plus onset and tail, the background looped when short); the paper's
    ``per-background`` layout is :func:`cuelab.core.tasks.sseu.per_background.build_per_background`.

    Args:
        out_dir: output folder (new, empty, or a partial build of the same config).
        speech_manifest: clean speech with a ``transcript`` column (default: the demo).
        backgrounds_manifest: backgrounds with ``scene``/``events``/``event_times``
            (default: the bundled backgrounds).
        snrs: SNRs in dB; ``inf`` = speech alone, ``-inf`` = background alone.
        seed: decides background choice and placement.
        sr: output rate in Hz.
        audio_format: ``flac`` (24-bit) or ``wav`` (float32, SNR exact to the bit).
        onset_range: speech onset and background tail are drawn from this range (s).
        stems: also write the scaled speech and background of each mix under ``stems/``.
        snr_over: the span the SNR holds over: ``speech`` (the samples the speech
            occupies) or ``clip`` (the whole mixture); both are measured in the manifest.
        control: progress (one item per mixture) and cancellation.

    Returns:
        A :class:`BuildResult`.

    Raises:
        SseuBuildError: bad parameters, or ``out_dir`` holds something else.
        ManifestError, AudioError, MixError: bad inputs.
        Cancelled: when ``control`` was cancelled (files so far stay; rerun to finish).
    """
    control = control or JobControl()
    out = Path(out_dir)
    snr_list = _check_params(snrs, sr, audio_format, onset_range)
    speech, backgrounds, bg_sha256 = read_build_inputs(
        speech_manifest, backgrounds_manifest, snr_over
    )
    config = _config_dict(
        BuildConfig(
            speech_sha256=speech.sha256,
            backgrounds_sha256=bg_sha256,
            snrs=[snr_tag(s) for s in snr_list],
            seed=int(seed),
            sr=int(sr),
            audio_format=audio_format,
            onset_range_s=[float(onset_range[0]), float(onset_range[1])],
            stems=bool(stems),
        ),
        snr_over=snr_over,
    )
    _check_out_dir(out, config)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    scenes, events = _class_lists(backgrounds)
    classes = {"scenes": scenes, "events": events}
    write_text_atomic(out / CLASSES_FILE, json.dumps(classes, indent=2) + "\n")

    plan = plan_placements([r.rel_path for r in speech], len(backgrounds), seed, onset_range)
    loader = _Loader(backgrounds, sr)
    result = BuildResult(out, out / MANIFEST_FILE, 0, scenes, events, config=config)
    rows: list[dict[str, object]] = []
    control.start(len(speech) * len(snr_list), "mixing")
    for row in speech:
        control.check()
        place = plan[row.rel_path]
        audio, _ = load_audio(row.path, sr=sr, min_seconds=0.0)
        for snr in snr_list:
            control.check()
            rows.append(_mix_one(out, row, audio, place, backgrounds, loader, snr, config, result))
            control.advance(message=row.rel_path)
    write_manifest(result.manifest, rows, EXTRA_COLUMNS)
    result.rows = len(rows)
    return result


def _check_params(
    snrs: Sequence[float], sr: int, audio_format: str, onset_range: tuple[float, float]
) -> list[float]:
    snr_list = [float(s) for s in snrs]
    if not snr_list:
        raise SseuBuildError("no SNRs given")
    if any(math.isnan(s) for s in snr_list) or len(set(snr_list)) != len(snr_list):
        raise SseuBuildError(f"SNR list {snr_list} has NaN or duplicates")
    too_far = [s for s in snr_list if math.isfinite(s) and abs(s) > MAX_FINITE_SNR_DB]
    if too_far:
        raise SseuBuildError(
            f"SNR {too_far[0]:g} dB is outside ±{MAX_FINITE_SNR_DB:g} dB (use inf or -inf)"
        )
    if sr < 8000:
        raise SseuBuildError(f"output rate {sr} Hz is too low (at least 8000)")
    if audio_format not in ("flac", "wav"):
        raise SseuBuildError(f"audio format {audio_format!r} is not flac or wav")
    lo, hi = onset_range
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo <= hi):
        raise SseuBuildError(f"onset range {lo:g}-{hi:g} s must satisfy 0 <= low <= high")
    return snr_list


def _mix_one(
    out: Path,
    row: ManifestRow,
    audio: np.ndarray,
    place: Placement,
    backgrounds: Sequence[Background],
    loader: _Loader,
    snr: float,
    config: dict[str, object],
    result: BuildResult,
) -> dict[str, object]:
    """Mix one clip at one SNR, write it unless already there, return its manifest row."""
    sr = int(str(config["sr"]))
    bg = backgrounds[place.background]
    bg_audio = loader.get(place.background)
    mix_seconds = place.onset_s + audio.size / sr + place.tail_s
    bg_seconds = bg_audio.size / sr
    offset = round(max(0.0, bg_seconds - mix_seconds) * place.offset_fraction, 3)
    start = round(offset * sr)
    span_mix = mix_over(
        audio,
        bg_audio[start:],
        sr,
        snr,
        place.onset_s,
        snr_over=str(config.get("snr_over", "speech")),
        tail_s=place.tail_s,
        speech_name=str(row.path),
        background_name=str(bg.path),
    )
    mixed = span_mix.result
    speech_id = row.utt_id
    safe_id = speech_id.replace("/", "__").replace("\\", "__")
    tag = snr_tag(snr)
    target = out / "audio" / f"snr{tag}" / f"{safe_id}.{config['audio_format']}"
    if target.is_file():
        result.reused += 1
    else:
        write_audio(target, mixed.mix, sr)
        result.written += 1
    if config["stems"]:
        for path, stem in zip(
            stem_paths(target, out / "stems" / f"snr{tag}"),
            (mixed.speech_stem, mixed.background_stem),
        ):
            if not path.is_file():
                write_audio(path, stem, sr)
    duration = mixed.mix.size / sr
    has_bg, has_speech = snr != math.inf, snr != -math.inf
    spans = events_in_mix(bg.spans, bg_seconds, offset, duration) if has_bg else []
    transcript = row.get("transcript")
    return {
        "path": str(target),
        "label": row.get("label"),
        "speaker": row.get("speaker"),
        "gender": row.get("gender"),
        "split": row.get("split"),
        "utt_id": f"{safe_id}@snr{tag}",
        "speech_id": speech_id,
        "transcript": transcript if has_speech else "",
        "scene": bg.scene if has_bg else "",
        "events": ";".join(e for e in bg.events if any(s.label == e for s in spans)),
        "event_times": ";".join(f"{s.label}@{s.start:.3f}-{s.end:.3f}" for s in spans),
        "snr_db": f"{snr:g}",
        **snr_cells(span_mix, "per-speech"),
        "onset_s": f"{place.onset_s:.3f}",
        "duration_s": f"{duration:.3f}",
        "background": os.path.relpath(bg.path, out.resolve()),
        "background_scene": bg.scene,
        "background_offset_s": f"{offset:.3f}",
        "source_transcript": transcript,
    }


def snr_cells(span_mix: SpanMix, layout: str, cut_s: float = 0.0) -> dict[str, str]:
    """The manifest's SNR and placement cells: the span used, both measured SNRs, the cut."""
    m = span_mix.result
    start = m.onset_samples / m.sr
    return {
        "achieved_snr_db": _fmt_db(span_mix.achieved_snr_db),
        "layout": layout,
        "snr_over": span_mix.snr_over,
        "snr_speech_db": _fmt_db(span_mix.snr_speech_db),
        "snr_clip_db": _fmt_db(span_mix.snr_clip_db),
        "speech_span_s": f"{start:.3f}-{start + m.speech_samples / m.sr:.3f}",
        "speech_cut_s": f"{cut_s:.3f}",
    }


def read_classes(out_dir: str | Path) -> tuple[list[str], list[str]]:
    """The ``(scenes, events)`` class lists a built set offers its prompts.

    Raises:
        ManifestError: no readable ``classes.json`` in ``out_dir``.
    """
    path = Path(out_dir) / CLASSES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [str(s) for s in data["scenes"]], [str(e) for e in data["events"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: no readable scene/event class lists ({exc})") from exc
