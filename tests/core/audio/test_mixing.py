"""Speech-over-background mixing: SNR exactness, looping, clipping, stems, errors, CLI."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from cuelab.core.audio.mixing import (
    MixError,
    loop_to_length,
    measure_snr_db,
    mix_at_snr,
    mix_files,
    parse_snr,
    stem_paths,
)
from cuelab.core.errors import AudioError, CueLabError


def _speech_like(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic tone with a syllable-rate envelope: enough structure to test mixing."""
    t = np.arange(round(sr * seconds)) / sr
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t)) + 0.05
    rng = np.random.default_rng(seed)
    return (0.3 * voiced * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _noise(sr: int, seconds: float, seed: int = 1, level: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(round(sr * seconds))).astype(np.float32)


def _span_snr(result) -> float:  # type: ignore[no-untyped-def]
    span = result.speech_span
    return measure_snr_db(result.speech_stem[span], result.background_stem[span])


# --------------------------------------------------------------------------- arrays


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("snr", [-10.0, 0.0, 7.5, 20.0])
def test_snr_is_exact(sr: int, snr: float) -> None:
    res = mix_at_snr(_speech_like(sr, 1.0), _noise(sr, 3.0), sr, snr, onset_s=0.4)
    assert abs(res.achieved_snr_db - snr) < 0.01
    assert abs(_span_snr(res) - snr) < 0.01
    assert res.onset_samples == round(0.4 * sr)
    assert res.mix.size == round(0.4 * sr) * 2 + sr  # lead-in + speech + tail (= onset)
    assert res.mix.dtype == np.float32


def test_crop_long_background() -> None:
    sr = 16000
    bg = _noise(sr, 10.0)
    res = mix_at_snr(_speech_like(sr, 1.0), bg, sr, 5.0, onset_s=0.5, tail_s=0.25)
    assert not res.looped
    assert res.mix.size == round(1.75 * sr)
    # The background stem is the start of the background, scaled.
    g = res.joint_gain * res.background_gain
    np.testing.assert_allclose(res.background_stem, g * bg[: res.mix.size], rtol=1e-5, atol=1e-7)


def test_loop_short_background_keeps_snr_and_power() -> None:
    sr = 16000
    bg = _noise(sr, 0.7)
    res = mix_at_snr(_speech_like(sr, 2.0), bg, sr, 3.0, onset_s=1.0)
    assert res.looped
    assert res.mix.size == 4 * sr
    assert abs(res.achieved_snr_db - 3.0) < 0.01
    # Equal-power seams: the looped background keeps the original level.
    g = res.joint_gain * res.background_gain
    level = np.sqrt(np.mean(np.square(res.background_stem / g)))
    assert level == pytest.approx(np.sqrt(np.mean(np.square(bg))), rel=0.03)


def test_crossfade_has_no_discontinuity() -> None:
    sr = 8000
    t = np.arange(round(0.37 * sr)) / sr
    tone = np.sin(2 * np.pi * 5.0 * t)  # 0.37 s is not a whole number of periods
    raw = np.tile(tone, 4)
    assert np.max(np.abs(np.diff(raw))) > 0.5  # plain tiling jumps at the seam
    looped, was_looped = loop_to_length(tone, 4 * tone.size, crossfade=round(0.05 * sr))
    assert was_looped and looped.size == 4 * tone.size
    smooth = np.max(np.abs(np.diff(tone)))
    assert np.max(np.abs(np.diff(looped))) < 3 * smooth
    # Away from the seams the loop is the original signal.
    np.testing.assert_array_equal(looped[: tone.size - 400], tone[: tone.size - 400])


def test_loop_of_a_very_short_signal() -> None:
    looped, was_looped = loop_to_length(np.ones(10), 95, crossfade=400)
    assert was_looped and looped.size == 95
    assert np.all(np.isfinite(looped))
    assert looped.min() > 0.7  # the crossfade shrank to half the signal, no gaps


def test_plus_and_minus_infinity() -> None:
    sr = 16000
    speech, bg = _speech_like(sr, 1.0), _noise(sr, 2.0)
    alone = mix_at_snr(speech, bg, sr, math.inf, onset_s=0.25)
    assert alone.achieved_snr_db == math.inf
    assert alone.background_gain == 0.0 and not alone.background_stem.any()
    np.testing.assert_allclose(alone.mix[alone.speech_span], speech * alone.joint_gain, rtol=1e-6)
    assert not alone.mix[: alone.onset_samples].any()
    only_bg = mix_at_snr(speech, bg, sr, -math.inf, onset_s=0.25)
    assert only_bg.achieved_snr_db == -math.inf
    assert only_bg.speech_gain == 0.0 and not only_bg.speech_stem.any()
    # Silence that does not matter is no error: silent speech for -inf, silent bg for +inf.
    mix_at_snr(np.zeros(sr, np.float32), bg, sr, -math.inf)
    mix_at_snr(speech, np.zeros(sr, np.float32), sr, math.inf)


def test_clipping_prevention_keeps_snr() -> None:
    sr = 16000
    loud = 0.9 * _speech_like(sr, 1.0) / np.max(np.abs(_speech_like(sr, 1.0)))
    res = mix_at_snr(loud, _noise(sr, 2.0, level=0.5), sr, -5.0, onset_s=0.2)
    assert res.joint_gain < 1.0
    assert np.max(np.abs(res.mix)) <= 0.99 + 1e-6
    assert abs(res.achieved_snr_db - (-5.0)) < 0.01
    quiet = mix_at_snr(0.01 * loud, _noise(sr, 2.0, level=0.001), sr, 10.0)
    assert quiet.joint_gain == 1.0  # never boosts


def test_stems_sum_to_mix() -> None:
    sr = 22050
    res = mix_at_snr(_speech_like(sr, 1.2), _noise(sr, 0.5), sr, 0.0, onset_s=0.3)
    np.testing.assert_array_equal(res.speech_stem + res.background_stem, res.mix)
    assert not res.speech_stem[: res.onset_samples].any()
    assert not res.speech_stem[res.speech_span.stop :].any()


@pytest.mark.parametrize(
    ("speech", "background", "snr", "onset", "match"),
    [
        (np.zeros(16000), _noise(16000, 1.0), 0.0, 0.0, "speech: speech is silent"),
        (_speech_like(16000, 1.0), np.zeros(16000), 0.0, 0.0, "background is silent"),
        (_speech_like(16000, 1.0), _noise(16000, 1.0), 0.0, -0.5, "onset must be zero or more"),
        (_speech_like(16000, 1.0), _noise(16000, 1.0), math.nan, 0.0, "not NaN"),
        (_speech_like(16000, 1.0), _noise(16000, 1.0), 0.0, 1e9, "the limit is 600 s"),
    ],
)
def test_array_errors(
    speech: np.ndarray, background: np.ndarray, snr: float, onset: float, match: str
) -> None:
    with pytest.raises(MixError, match=match):
        mix_at_snr(speech, background, 16000, snr, onset_s=onset)


def test_background_silent_only_under_the_speech() -> None:
    sr = 16000
    bg = np.concatenate([_noise(sr, 0.5), np.zeros(sr, np.float32)])
    with pytest.raises(MixError, match=r"silent where the speech lies \(0.50-1.50 s\)"):
        mix_at_snr(_speech_like(sr, 1.0), bg, sr, 0.0, onset_s=0.5, tail_s=0.0)


def test_non_finite_input_is_an_audio_error() -> None:
    bad = _speech_like(16000, 1.0)
    bad[10] = np.nan
    with pytest.raises(AudioError, match="not finite"):
        mix_at_snr(bad, _noise(16000, 1.0), 16000, 0.0, speech_name="clip.wav")


@pytest.mark.parametrize(("text", "value"), [("5", 5.0), ("-3.5", -3.5), ("inf", math.inf)])
def test_parse_snr(text: str, value: float) -> None:
    assert parse_snr(text) == value
    assert parse_snr("+inf") == math.inf and parse_snr("-inf") == -math.inf
    for bad in ("loud", "nan"):
        with pytest.raises(MixError):
            parse_snr(bad)


# --------------------------------------------------------------------------- files


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Stereo 8 kHz speech and a mono 48 kHz short background, plus other variants."""
    out: dict[str, Path] = {}
    sp = _speech_like(8000, 1.0)
    stereo = np.stack([sp, 0.5 * sp], axis=1)
    out["speech_8k_stereo"] = tmp_path / "speech.wav"
    sf.write(out["speech_8k_stereo"], stereo, 8000, subtype="PCM_16")
    out["speech_48k"] = tmp_path / "speech48.flac"
    sf.write(out["speech_48k"], _speech_like(48000, 0.8), 48000)
    out["bg_48k_short"] = tmp_path / "bg.wav"
    sf.write(out["bg_48k_short"], _noise(48000, 0.6), 48000)
    bg_stereo = np.stack([_noise(16000, 3.0, seed=4), _noise(16000, 3.0, seed=5)], axis=1)
    out["bg_16k_stereo"] = tmp_path / "bg_stereo.wav"
    sf.write(out["bg_16k_stereo"], bg_stereo, 16000, subtype="FLOAT")
    out["silent"] = tmp_path / "silent.wav"
    sf.write(out["silent"], np.zeros(8000, np.float32), 8000)
    return out


@pytest.mark.parametrize(
    ("speech", "background", "sr"),
    [
        ("speech_8k_stereo", "bg_48k_short", 44100),
        ("speech_48k", "bg_16k_stereo", 16000),
        ("speech_8k_stereo", "bg_16k_stereo", 48000),
    ],
)
def test_mix_files_any_rate_and_channels(
    files: dict[str, Path], tmp_path: Path, speech: str, background: str, sr: int
) -> None:
    out = tmp_path / "out" / "mix.wav"
    res = mix_files(
        files[speech], files[background], 6.0, out, onset_s=0.3, stems_dir=tmp_path / "stems", sr=sr
    )
    mix, rate = sf.read(out, dtype="float32")
    assert rate == sr and mix.ndim == 1
    np.testing.assert_array_equal(mix, res.mix)
    sp_path, bg_path = stem_paths(out, tmp_path / "stems")
    assert "speech" in sp_path.name and "background" in bg_path.name
    sp, _ = sf.read(sp_path, dtype="float32")
    bg, _ = sf.read(bg_path, dtype="float32")
    np.testing.assert_array_equal(sp + bg, mix)
    span = res.speech_span
    assert abs(measure_snr_db(sp[span], bg[span]) - 6.0) < 0.01


def test_mix_files_errors(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MixError, match=re.escape(f"{files['silent']}: speech is silent")):
        mix_files(files["silent"], files["bg_48k_short"], 0.0, tmp_path / "m.wav")
    with pytest.raises(MixError, match=re.escape(f"{files['silent']}: background is silent")):
        mix_files(files["speech_48k"], files["silent"], 0.0, tmp_path / "m.wav")
    with pytest.raises(AudioError, match=r"missing\.wav: file not found"):
        mix_files(tmp_path / "missing.wav", files["bg_48k_short"], 0.0, tmp_path / "m.wav")
    with pytest.raises(AudioError, match="overwrite an input"):
        mix_files(files["speech_48k"], files["bg_48k_short"], 0.0, files["bg_48k_short"])
    assert not (tmp_path / "m.wav").exists()


# --------------------------------------------------------------------------- CLI


def test_cli_mix_prints_snr_and_gains(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mix.wav"
    stems = tmp_path / "stems"
    argv = [
        "mix",
        str(files["speech_8k_stereo"]),
        str(files["bg_48k_short"]),
        "--snr",
        "-5",
        "-o",
        str(out),
        "--onset",
        "0.5",
        "--stems",
        str(stems),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "achieved -5.00 dB" in text
    assert "gains: speech 1 (+0.00 dB), background" in text
    assert "looped" in text
    assert sf.info(out).samplerate == 44100
    assert sorted(p.name for p in stems.iterdir()) == ["mix_background.wav", "mix_speech.wav"]


@pytest.mark.parametrize(("snr", "achieved"), [("-inf", None), ("+inf", None), ("12.5", 12.5)])
def test_cli_mix_json_and_infinities(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    snr: str,
    achieved: float | None,
) -> None:
    out = tmp_path / "mix.wav"
    argv = ["mix", str(files["speech_48k"]), str(files["bg_16k_stereo"]), "--snr", snr]
    assert main([*argv, "-o", str(out), "--sr", "16000", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    if achieved is None:  # infinities are printed as null in JSON
        assert record["achieved_snr_db"] is None
        assert (record["speech_gain"] == 0.0) == snr.startswith("-")
    else:
        assert abs(record["achieved_snr_db"] - achieved) < 0.01
    assert record["sr"] == 16000 and not record["looped"]


def test_cli_mix_errors_exit_non_zero(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "mix.wav")
    code = main(["mix", str(files["silent"]), str(files["bg_48k_short"]), "--snr", "0", "-o", out])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        err.strip() == f"cuelab: error: {files['silent']}: speech is silent (RMS below -100 dBFS)"
    )
    code = main(["mix", "nope.wav", str(files["bg_48k_short"]), "--snr", "0", "-o", out])
    assert code == 1 and "nope.wav: file not found" in capsys.readouterr().err
    bg = str(files["bg_48k_short"])
    code = main(["mix", str(files["speech_48k"]), bg, "--snr", "0", "--onset", "-1", "-o", out])
    assert code == 1 and "onset must be zero or more" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["mix", str(files["speech_48k"]), bg, "--snr", "loud", "-o", out])
    assert exc.value.code == 2
    assert "not a number of dB" in capsys.readouterr().err


def test_error_types_are_cuelab_errors() -> None:
    assert issubclass(MixError, CueLabError)


@pytest.mark.parametrize("crossfade", [math.nan, math.inf, -0.01])
def test_bad_crossfade_is_a_mix_error(crossfade: float) -> None:
    sr = 8000
    with pytest.raises(MixError, match="crossfade"):
        mix_at_snr(_speech_like(sr, 0.5), _noise(sr, 0.2), sr, 0.0, crossfade_s=crossfade)


@pytest.mark.parametrize("snr", [4000.0, -4000.0, 301.0])
def test_snr_beyond_float_range_is_a_mix_error(snr: float) -> None:
    # 4000 dB overflowed 10**(snr/10) and -4000 dB divided by zero before the check.
    sr = 8000
    with pytest.raises(MixError, match="outside"):
        mix_at_snr(_speech_like(sr, 0.5), _noise(sr, 1.0), sr, snr)


def test_extreme_finite_snr_inside_the_range_is_still_exact() -> None:
    sr = 8000
    result = mix_at_snr(_speech_like(sr, 0.5), _noise(sr, 1.0), sr, -300.0)
    assert result.achieved_snr_db == pytest.approx(-300.0, abs=0.01)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--snr", "4000"], "outside"),
        (["--snr", "5", "--crossfade", "nan"], "crossfade"),
    ],
)
def test_cli_bad_mix_numbers_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    sr = 16000
    speech, bg = tmp_path / "s.wav", tmp_path / "b.wav"
    sf.write(speech, _speech_like(sr, 0.5), sr)
    sf.write(bg, _noise(sr, 1.0), sr)
    code = main(["mix", str(speech), str(bg), "-o", str(tmp_path / "m.wav"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("cuelab: error:") and message in err and "\n" not in err


def test_stems_never_exceed_the_peak_and_sum_to_the_mix(tmp_path: Path) -> None:
    from cuelab.core.audio.io import write_audio
    from cuelab.core.audio.mixing import measure_snr_db, mix_at_snr

    sr = 16000
    t = np.arange(sr) / sr
    speech = (0.95 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    background = -speech.copy()  # the background cancels the speech: a quiet mix, loud stems
    res = mix_at_snr(speech, background, sr, snr_db=-6.0, tail_s=0.0, crossfade_s=0.0)
    assert float(np.max(np.abs(res.mix))) < 0.6
    assert max(np.max(np.abs(res.speech_stem)), np.max(np.abs(res.background_stem))) <= 0.99
    np.testing.assert_array_equal(res.mix, res.speech_stem + res.background_stem)
    assert measure_snr_db(res.speech_stem, res.background_stem) == pytest.approx(-6.0, abs=1e-3)
    # written as 24-bit FLAC, nothing is clipped: the stems still sum to the mix
    paths = [tmp_path / f"{n}.flac" for n in ("mix", "speech", "background")]
    for path, x in zip(paths, (res.mix, res.speech_stem, res.background_stem)):
        write_audio(path, x, sr)
    mix, s_stem, b_stem = (sf.read(p, dtype="float32")[0] for p in paths)
    np.testing.assert_allclose(mix, s_stem + b_stem, atol=2 * 2.0**-23)
