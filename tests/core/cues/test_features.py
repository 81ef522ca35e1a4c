"""eGeMAPS extraction: physics of the summaries, the disk cache, batch runs."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.core.audio.io import file_sha256
from cuelab.core.cues.extract import F0_COLUMN, ClipFeatures, FeatureConfig, extract_signal
from cuelab.core.cues.feature_cache import FeatureCache, cache_key, default_cache_dir, extract_file
from cuelab.core.cues.feature_pool import extract_many
from cuelab.core.errors import AudioError, Cancelled, FeatureError
from cuelab.core.jobs import JobControl, ProgressInfo

SR = 16000


def harmonic(f0: float, seconds: float, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    """A voice-like tone: f0 and three harmonics with falling amplitude."""
    t = np.arange(round(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))
    return (amp * x / 2).astype(np.float32)


def semitones(f0: float) -> float:
    return 12 * math.log2(f0 / 27.5)


def write_clip(path: Path, x: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, x, sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def tone_200() -> ClipFeatures:
    return extract_signal(harmonic(200.0, 1.0), SR)


def test_shape_of_features(tone_200: ClipFeatures) -> None:
    assert len(tone_200.functionals) == 88
    assert len(tone_200.descriptors) == 25
    assert "Loudness_sma3" in tone_200.descriptors and F0_COLUMN in tone_200.descriptors
    assert tone_200.n_frames == len(tone_200.f0_semitones)
    assert abs(tone_200.n_frames * tone_200.frame_hop_s - 1.0) < 0.05
    assert tone_200.duration_s == pytest.approx(1.0)
    assert tone_200.voiced_ratio > 0.9
    assert tone_200.descriptors[F0_COLUMN] == pytest.approx(semitones(200.0), abs=0.3)


def test_voiced_only_average_is_not_diluted_by_silence(tone_200: ClipFeatures) -> None:
    x = np.concatenate([np.zeros(SR, dtype=np.float32), harmonic(200.0, 1.0)])
    feats = extract_signal(x, SR)
    assert feats.voiced_ratio == pytest.approx(0.5, abs=0.05)
    assert feats.descriptors[F0_COLUMN] == pytest.approx(semitones(200.0), abs=0.3)
    assert feats.descriptors[F0_COLUMN] == pytest.approx(tone_200.descriptors[F0_COLUMN], abs=0.1)
    first_half = feats.f0_semitones[: feats.n_frames // 2 - 5]
    assert all(v == 0.0 for v in first_half)
    # Loudness is not voiced-only: the silent half does dilute it.
    assert feats.descriptors["Loudness_sma3"] < 0.7 * tone_200.descriptors["Loudness_sma3"]


def test_louder_and_higher_tones_move_the_right_descriptors(tone_200: ClipFeatures) -> None:
    louder = extract_signal(harmonic(200.0, 1.0, amp=0.9), SR)
    higher = extract_signal(harmonic(300.0, 1.0), SR)
    assert louder.descriptors["Loudness_sma3"] > 1.5 * tone_200.descriptors["Loudness_sma3"]
    assert higher.descriptors[F0_COLUMN] == pytest.approx(semitones(300.0), abs=0.3)
    assert higher.descriptors[F0_COLUMN] > tone_200.descriptors[F0_COLUMN] + 6


def test_silence_has_no_voiced_frames() -> None:
    feats = extract_signal(np.zeros(SR, dtype=np.float32), SR)
    assert feats.voiced_ratio == 0.0
    assert math.isnan(feats.descriptors[F0_COLUMN])
    assert math.isnan(feats.descriptors["jitterLocal_sma3nz"])
    assert not math.isnan(feats.descriptors["Loudness_sma3"])
    assert set(feats.f0_semitones) == {0.0}


def test_other_input_rates_are_resampled(tone_200: ClipFeatures) -> None:
    feats = extract_signal(harmonic(200.0, 1.0, sr=44100), 44100)
    assert feats.n_frames == tone_200.n_frames
    assert feats.descriptors[F0_COLUMN] == pytest.approx(tone_200.descriptors[F0_COLUMN], abs=0.1)


def test_full_scale_input_is_clipped_not_wrapped(tone_200: ClipFeatures) -> None:
    hot = extract_signal(harmonic(200.0, 1.0, amp=3.0), SR)
    assert hot.voiced_ratio > 0.9
    assert hot.descriptors[F0_COLUMN] == pytest.approx(tone_200.descriptors[F0_COLUMN], abs=0.5)


def test_bad_inputs_raise_one_line_errors() -> None:
    with pytest.raises(AudioError, match="clip9: too short"):
        extract_signal(np.zeros(800, dtype=np.float32), SR, name="clip9")
    with pytest.raises(FeatureError, match="unknown openSMILE feature set 'eGeMAPSv99'"):
        extract_signal(harmonic(200.0, 0.5), SR, FeatureConfig(feature_set="eGeMAPSv99"))


def test_round_trip_through_json_keeps_nan() -> None:
    feats = extract_signal(np.zeros(SR // 2, dtype=np.float32), SR)
    text = json.dumps(feats.to_dict(), allow_nan=False)  # NaN must not reach JSON
    back = ClipFeatures.from_dict(json.loads(text))
    assert math.isnan(back.descriptors[F0_COLUMN])
    assert json.dumps(back.to_dict(), allow_nan=False) == text
    with pytest.raises(ValueError, match="malformed"):
        ClipFeatures.from_dict({"descriptors": {}})


def test_config_key_depends_on_config() -> None:
    base = FeatureConfig()
    assert base.key() == FeatureConfig().key() and len(base.key()) == 16
    assert FeatureConfig(sample_rate=8000).key() != base.key()
    assert FeatureConfig(feature_set="GeMAPSv01b").key() != base.key()


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUELAB_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "features"
    assert FeatureCache().root == tmp_path / "features"


def test_cache_hit_is_served_from_disk(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "a.wav", harmonic(220.0, 1.0))
    cache = FeatureCache(tmp_path / "cache")
    first = extract_file(clip, cache=cache)
    key = cache_key(file_sha256(clip), FeatureConfig())
    entry = cache.path_for(key)
    assert entry.is_file() and entry.parent.parent.parent == cache.root
    assert extract_file(clip, cache=cache).to_dict() == first.to_dict()
    # Prove the second call reads the entry rather than re-decoding: edit it.
    record = json.loads(entry.read_text())
    record["features"]["voiced_ratio"] = 0.123
    entry.write_text(json.dumps(record))
    assert extract_file(clip, cache=cache).voiced_ratio == 0.123
    # Same content under another name hits; changed content misses.
    twin = tmp_path / "twin.wav"
    twin.write_bytes(clip.read_bytes())
    assert extract_file(twin, cache=cache).voiced_ratio == 0.123
    write_clip(clip, harmonic(330.0, 1.0))
    assert extract_file(clip, cache=cache).voiced_ratio > 0.9
    # The duration limit still applies to a hit.
    with pytest.raises(AudioError, match=r"twin\.wav: too long"):
        extract_file(twin, cache=cache, max_seconds=0.5)


def test_corrupt_cache_entry_is_recomputed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = write_clip(tmp_path / "a.wav", harmonic(220.0, 1.0))
    cache = FeatureCache(tmp_path / "cache")
    good = extract_file(clip, cache=cache)
    entry = cache.path_for(cache_key(file_sha256(clip), FeatureConfig()))
    entry.write_text('{"key": "trunc')
    with caplog.at_level(logging.WARNING, logger="cuelab.core.cues.feature_cache"):
        again = extract_file(clip, cache=cache)
    assert again.to_dict() == good.to_dict()
    assert "corrupt entry" in caplog.text
    assert json.loads(entry.read_text())["features"] == good.to_dict()  # rewritten


def test_extract_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(AudioError, match=r"bad\.wav: cannot decode"):
        extract_file(bad, cache=FeatureCache(tmp_path / "cache"))
    with pytest.raises(AudioError, match=r"missing\.wav: file not found"):
        extract_file(tmp_path / "missing.wav", cache=FeatureCache(tmp_path / "cache"))


def cancel_after(n: int) -> JobControl:
    """A control that cancels itself once ``n`` clips are done."""

    def on_progress(info: ProgressInfo) -> None:
        if info.done >= n:
            control.cancel()

    control = JobControl(on_progress)
    return control


def make_clips(folder: Path, pitches: list[float]) -> list[Path]:
    return [write_clip(folder / f"c{i}.wav", harmonic(f, 0.6)) for i, f in enumerate(pitches)]


def test_extract_many_in_process_order_progress_and_hits(tmp_path: Path) -> None:
    clips = make_clips(tmp_path, [300.0, 150.0, 220.0])
    clips.append(clips[0])  # a duplicate is computed once, reported twice
    seen: list[ProgressInfo] = []
    cache = FeatureCache(tmp_path / "cache")
    feats = extract_many(clips, cache=cache, workers=1, control=JobControl(seen.append))
    f0 = [f.descriptors[F0_COLUMN] for f in feats]
    assert f0[0] > f0[2] > f0[1] and f0[3] == f0[0]
    assert [p.done for p in seen] == [0, 2, 3, 4] and {p.total for p in seen} == {4}
    assert len(list(cache.root.rglob("*.json"))) == 3
    seen.clear()
    hits = extract_many(clips, cache=cache, workers=1, control=JobControl(seen.append))
    assert [h.to_dict() for h in hits] == [f.to_dict() for f in feats]
    assert [p.done for p in seen] == [0, 1, 2, 3, 4]


def test_extract_many_cancel_in_process_keeps_finished(tmp_path: Path) -> None:
    clips = make_clips(tmp_path, [150.0, 200.0, 250.0, 300.0])
    cache = FeatureCache(tmp_path / "cache")
    control = cancel_after(1)
    with pytest.raises(Cancelled):
        extract_many(clips, cache=cache, workers=1, control=control)
    assert len(list(cache.root.rglob("*.json"))) == 1


def test_extract_many_process_pool(tmp_path: Path) -> None:
    pitches = [140.0, 180.0, 230.0, 260.0, 310.0]
    clips = make_clips(tmp_path, pitches)
    seen: list[ProgressInfo] = []
    feats = extract_many(clips, workers=2, control=JobControl(seen.append))
    for clip, got in zip(clips, feats):
        assert got.to_dict() == extract_file(clip).to_dict()  # same numbers, input order
    assert seen[-1].done == seen[-1].total == len(clips)
    assert sorted(p.done for p in seen) == list(range(len(clips) + 1))

    # An error in one file names it.
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(AudioError, match=r"broken\.wav: cannot decode"):
        extract_many([*clips[:2], bad, *clips[2:]], workers=2)


def test_extract_many_process_pool_cancel(tmp_path: Path) -> None:
    clips = make_clips(tmp_path, [float(f) for f in range(120, 360, 20)])
    cache = FeatureCache(tmp_path / "cache")
    control = cancel_after(1)
    with pytest.raises(Cancelled):
        extract_many(clips, cache=cache, workers=2, control=control)
    cached = len(list(cache.root.rglob("*.json")))
    assert 1 <= cached < len(clips)
    # What was cached is served on the next run; the rest is computed.
    feats = extract_many(clips, cache=cache, workers=2)
    assert len(feats) == len(clips)
    assert len(list(cache.root.rglob("*.json"))) == len(clips)


def test_cache_put_of_infinite_values_is_a_logged_miss(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    feats = ClipFeatures({"x": math.inf}, {"y": 1.0}, 0.5, 10, 0.1, [0.0] * 10)
    cache.put("ab" * 8, feats)  # must not raise: the cache only saves time
    assert cache.get("ab" * 8) is None
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_one_opensmile_run_equals_one_run_per_level() -> None:
    """CueLab reads both levels from one run; the package's two runs give the same numbers."""
    import opensmile

    from cuelab.core.cues.extract import extract_signal

    x = harmonic(180.0, 2.0)
    feats = extract_signal(x, SR)
    levels = {}
    for level in (opensmile.FeatureLevel.LowLevelDescriptors, opensmile.FeatureLevel.Functionals):
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=level)
        levels[level] = smile.process_signal(np.clip(x, -1.0, 32767 / 32768), SR)
    func = levels[opensmile.FeatureLevel.Functionals].iloc[0]
    assert feats.functionals == pytest.approx({k: float(v) for k, v in func.items()}, abs=0)
    lld = levels[opensmile.FeatureLevel.LowLevelDescriptors]
    assert feats.n_frames == len(lld)
    loud = lld["Loudness_sma3"].to_numpy(dtype=np.float64)
    assert feats.descriptors["Loudness_sma3"] == pytest.approx(float(loud.mean()), rel=1e-12)
