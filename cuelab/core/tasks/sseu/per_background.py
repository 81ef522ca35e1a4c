"""The SSEU paper's set layout: one mixture per background clip, at the background's length.

SSEU-Bench's figures imply this layout: 378 DESED + 739 MAESTRO-Real
backgrounds × 7 SNRs ≈ 21.7 h, about 10 s per mixture, and its CoT asks the
model when the speech begins. CueLab's first layout (``per-speech``,
:func:`~cuelab.core.tasks.sseu.build.build_sseu`) makes one speech-length mix
per speech clip over a looped background instead.

Here every background gets one speech clip (dealt round-robin over a seeded
shuffle of the speech clips, so every clip is used about equally) placed at a
seeded onset inside it: the free room (background length − speech length) is
split by a fraction drawn from a generator seeded by ``(seed, background)``.
A speech clip longer than its background is cut to the background's length;
the seconds cut are recorded in ``speech_cut_s`` and the transcript is kept
whole (the WER of such a clip counts the words cut as deletions — the
manifest says which clips these are). The background is never looped or
cropped, so every event annotation keeps its times.

The manifest has the same columns as a per-speech set (``utt_id`` is the
background's id at the SNR) plus ``layout``; ``build.json`` records
``layout = "per-background"`` so the two layouts never share a folder.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cuelab.core.audio.io import load_audio, write_audio
from cuelab.core.audio.mixing import stem_paths
from cuelab.core.audio.snr_span import mix_over
from cuelab.core.datasets.manifest import ManifestRow
from cuelab.core.datasets.writer import write_manifest, write_text_atomic
from cuelab.core.jobs import JobControl
from cuelab.core.tasks.sseu.build import (
    CLASSES_FILE,
    CONFIG_FILE,
    DEFAULT_ONSET_RANGE,
    DEFAULT_SNRS,
    DEFAULT_SR,
    EXTRA_COLUMNS,
    MANIFEST_FILE,
    Background,
    BuildConfig,
    BuildResult,
    SseuBuildError,
    _check_out_dir,
    _check_params,
    _class_lists,
    _clip_seed,
    _config_dict,
    _Loader,
    events_in_mix,
    read_build_inputs,
    snr_cells,
    snr_tag,
)


def background_id(bg: Background) -> str:
    """A file-name-safe id of a background: its manifest path without the extension."""
    stem = str(Path(bg.rel_path).with_suffix(""))
    return stem.replace("/", "__").replace("\\", "__")


def plan_per_background(
    background_keys: Sequence[str], speech_keys: Sequence[str], seed: int
) -> dict[str, tuple[str, float]]:
    """Per background (by manifest path), its speech clip and onset fraction.

    Speech clips are dealt round-robin over a seeded shuffle of both sorted key
    lists; the onset fraction comes from a generator seeded by the seed and the
    background alone, so adding backgrounds never moves the old ones' speech.
    """
    bgs = sorted(background_keys)
    speech = sorted(speech_keys)
    bg_order = np.random.default_rng([seed, 1]).permutation(len(bgs)).tolist()
    sp_order = np.random.default_rng([seed, 2]).permutation(len(speech)).tolist()
    plan = {}
    for rank, idx in enumerate(bg_order):
        fraction = float(_clip_seed(seed, bgs[idx]).uniform())
        plan[bgs[idx]] = (speech[sp_order[rank % len(speech)]], fraction)
    return plan


def build_per_background(
    out_dir: str | Path,
    speech_manifest: str | Path | None = None,
    backgrounds_manifest: str | Path | None = None,
    snrs: Sequence[float] = DEFAULT_SNRS,
    seed: int = 0,
    *,
    sr: int = DEFAULT_SR,
    audio_format: str = "flac",
    stems: bool = False,
    snr_over: str = "speech",
    control: JobControl | None = None,
) -> BuildResult:
    """One mixture per background at every SNR, at the background's length; write the set.

    Same arguments, files and refusals as :func:`~cuelab.core.tasks.sseu.build.build_sseu`
    (no onset range: the onset is drawn inside each background).
    """
    control = control or JobControl()
    out = Path(out_dir)
    snr_list = _check_params(snrs, sr, audio_format, DEFAULT_ONSET_RANGE)
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
            onset_range_s=[],
            stems=bool(stems),
        ),
        layout="per-background",
        snr_over=snr_over,
    )
    _check_out_dir(out, config)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    scenes, events = _class_lists(backgrounds)
    write_text_atomic(
        out / CLASSES_FILE, json.dumps({"scenes": scenes, "events": events}, indent=2) + "\n"
    )
    by_path = {r.rel_path: r for r in speech}
    plan = plan_per_background([b.rel_path for b in backgrounds], list(by_path), seed)
    loader = _Loader(backgrounds, sr)
    result = BuildResult(out, out / MANIFEST_FILE, 0, scenes, events, config=config)
    rows: list[dict[str, object]] = []
    control.start(len(backgrounds) * len(snr_list), "mixing")
    for i, bg in enumerate(backgrounds):
        control.check()
        speech_key, fraction = plan[bg.rel_path]
        row = by_path[speech_key]
        audio, _ = load_audio(row.path, sr=sr, min_seconds=0.0)
        bg_audio = loader.get(i)
        for snr in snr_list:
            control.check()
            rows.append(_mix_one(out, bg, bg_audio, row, audio, fraction, snr, config, result))
            control.advance(message=bg.rel_path)
    write_manifest(result.manifest, rows, EXTRA_COLUMNS)
    result.rows = len(rows)
    return result


def _mix_one(
    out: Path,
    bg: Background,
    bg_audio: np.ndarray,
    row: ManifestRow,
    audio: np.ndarray,
    fraction: float,
    snr: float,
    config: dict[str, object],
    result: BuildResult,
) -> dict[str, object]:
    """Place the speech inside the whole background at one SNR; write it; its manifest row."""
    sr = int(str(config["sr"]))
    n = bg_audio.size
    cut = max(0, audio.size - n)
    speech = audio[: audio.size - cut] if cut else audio
    onset = round((n - speech.size) * fraction)
    span_mix = mix_over(
        speech,
        bg_audio,
        sr,
        snr,
        onset / sr,
        snr_over=str(config.get("snr_over", "speech")),
        tail_s=(n - onset - speech.size) / sr,
        speech_name=str(row.path),
        background_name=str(bg.path),
    )
    mixed = span_mix.result
    if mixed.mix.size != n:  # the mix must be exactly the background, sample for sample
        raise SseuBuildError(f"{bg.path}: mix of {mixed.mix.size} samples for {n}")
    safe_id = background_id(bg)
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
    duration = n / sr
    has_bg, has_speech = snr != math.inf, snr != -math.inf
    spans = events_in_mix(bg.spans, duration, 0.0, duration) if has_bg else []
    transcript = row.get("transcript")
    return {
        "path": str(target),
        "label": row.get("label"),
        "speaker": row.get("speaker"),
        "gender": row.get("gender"),
        "split": row.get("split"),
        "utt_id": f"{safe_id}@snr{tag}",
        "speech_id": row.utt_id,
        "transcript": transcript if has_speech else "",
        "scene": bg.scene if has_bg else "",
        "events": ";".join(e for e in bg.events if any(s.label == e for s in spans)),
        "event_times": ";".join(f"{s.label}@{s.start:.3f}-{s.end:.3f}" for s in spans),
        "snr_db": f"{snr:g}",
        **snr_cells(span_mix, "per-background", cut / sr),
        "onset_s": f"{onset / sr:.3f}",
        "duration_s": f"{duration:.3f}",
        "background": os.path.relpath(bg.path, out.resolve()),
        "background_scene": bg.scene,
        "background_offset_s": "0.000",
        "source_transcript": transcript,
    }
