"""Audio I/O: formats, mono mix-down, resampling and every AudioError case."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.core.audio.io import (
    audio_duration,
    check_signal,
    file_sha256,
    load_audio,
    resample,
    to_mono,
    write_audio,
)
from cuelab.core.errors import AudioError


def tone(freq: float, seconds: float, sr: int, amp: float = 0.3) -> np.ndarray:
    """A pure sine, float32."""
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    """Frequency of the strongest spectral peak (Hann window)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[np.argmax(spec)])


def assert_one_line(err: pytest.ExceptionInfo[AudioError], *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"),
    [
        (".wav", "WAV", "PCM_16"),
        (".flac", "FLAC", "PCM_16"),
        (".ogg", "OGG", "VORBIS"),
        (".mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
def test_formats_load_as_mono_16k(tmp_path: Path, suffix: str, fmt: str, subtype: str) -> None:
    path = tmp_path / f"tone{suffix}"
    sf.write(path, tone(440.0, 1.0, 22050), 22050, format=fmt, subtype=subtype)
    x, sr = load_audio(path)
    assert sr == 16000
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.size / sr - 1.0) < 0.1  # lossy codecs pad a little
    assert abs(peak_hz(x, sr) - 440.0) < 3.0


def test_native_rate_kept_when_sr_is_none(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, tone(440.0, 0.5, 44100), 44100)
    x, sr = load_audio(path, sr=None)
    assert sr == 44100 and x.size == 22050


def test_stereo_is_averaged(tmp_path: Path) -> None:
    left, right = tone(300.0, 0.5, 16000), tone(700.0, 0.5, 16000, amp=0.1)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    x, _ = load_audio(path)
    np.testing.assert_allclose(x, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize(("native_sr", "freq"), [(44100, 440.0), (8000, 1000.0)])
def test_resampling_keeps_frequency(tmp_path: Path, native_sr: int, freq: float) -> None:
    path = tmp_path / "r.wav"
    sf.write(path, tone(freq, 1.0, native_sr), native_sr, subtype="FLOAT")
    x, sr = load_audio(path, 16000)
    assert sr == 16000 and abs(x.size - 16000) <= 1
    assert abs(peak_hz(x, sr) - freq) < 2.0
    assert 0.28 < np.max(np.abs(x)) < 0.32  # HQ filter keeps the level


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as err:
        load_audio(tmp_path / "nope.wav")
    assert_one_line(err, "nope.wav", "not found")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line(err, "empty.wav", "empty file")


def test_header_without_samples(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line(err, "zero.wav", "no audio samples")


@pytest.mark.parametrize("keep_s", [0.25, 1.0])
def test_a_wav_cut_short_of_its_header_is_refused(tmp_path: Path, keep_s: float) -> None:
    full = tmp_path / "full.wav"
    sf.write(full, tone(220, 1.52, 16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + int(keep_s * 16000) * 2])
    for read in (load_audio, audio_duration):
        with pytest.raises(AudioError) as err:
            read(cut)
        assert_one_line(err, "cut.wav", "truncated", "1.52 s", f"{keep_s:.2f} s")
    assert load_audio(full)[0].size == round(1.52 * 16000)  # the whole file is fine


def test_a_streamed_wav_with_a_placeholder_size_is_read(tmp_path: Path) -> None:
    """Writers that stream put 0xFFFFFFFF in the size fields; that is not truncation."""
    path = tmp_path / "streamed.wav"
    sf.write(path, tone(220, 0.5, 16000), 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    raw[4:8] = raw[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    assert load_audio(path)[0].size == 8000


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line(err, "garbage.wav", "cannot decode")


def test_nan_samples(tmp_path: Path) -> None:
    x = tone(440.0, 0.5, 16000)
    x[100:110] = np.nan
    x[200] = np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line(err, "nan.wav", "11 of 8000", "not finite")


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, tone(440.0, 0.05, 16000), 16000)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line(err, "short.wav", "too short", "0.050 s", "0.1 s")


def test_too_long(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, tone(440.0, 2.5, 16000), 16000)
    with pytest.raises(AudioError) as err:
        load_audio(path, max_seconds=1.0)
    assert_one_line(err, "long.wav", "too long", "2.5 s", "limit is 1 s")
    x, _ = load_audio(path, max_seconds=None)
    assert x.size == 40000


def test_check_signal_layouts_and_errors() -> None:
    mono = tone(440.0, 0.5, 16000)
    np.testing.assert_allclose(check_signal(np.stack([mono, mono]), 16000, "a"), mono)
    np.testing.assert_allclose(check_signal(np.stack([mono, mono], 1), 16000, "a"), mono)
    with pytest.raises(AudioError, match="clip7: contains no audio samples"):
        check_signal(np.zeros(0), 16000, "clip7")
    with pytest.raises(AudioError, match="clip7: 1 of 8000 samples are not finite"):
        check_signal(np.where(np.arange(8000) == 5, np.nan, mono), 16000, "clip7")
    with pytest.raises(AudioError, match="clip7: too long"):
        check_signal(mono, 16000, "clip7", max_seconds=0.2)
    with pytest.raises(AudioError, match="invalid sample rate"):
        check_signal(mono, 0, "clip7")


def test_to_mono_and_resample_shapes() -> None:
    x = np.ones((100, 2), dtype=np.float64)
    assert to_mono(x).shape == (100,) and to_mono(x).dtype == np.float32
    y = resample(tone(440.0, 1.0, 48000), 48000, 16000)
    assert y.dtype == np.float32 and y.size == 16000
    same = resample(y, 16000, 16000)
    assert same is not y and np.array_equal(same, y)


def test_write_audio_round_trips_atomically(tmp_path: Path) -> None:
    x = tone(440.0, 0.5, 16000)
    wav = write_audio(tmp_path / "deep" / "er" / "x.wav", x, 16000)
    y, sr = sf.read(wav, dtype="float32")
    assert sr == 16000 and np.array_equal(x, y)  # float WAV is exact
    flac = write_audio(tmp_path / "x.flac", x * 4, 16000)  # beyond full scale: clipped
    z, _ = sf.read(flac, dtype="float32")
    assert np.max(z) <= 1.0 and np.min(z) >= -1.0 and np.max(z) > 0.99
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["x.flac", "x.wav"]
    with pytest.raises(AudioError, match=r"x\.mp4: cannot write \.mp4"):
        write_audio(tmp_path / "x.mp4", x, 16000)
    with pytest.raises(AudioError, match="non-finite"):
        write_audio(tmp_path / "n.wav", np.full(10, np.nan), 16000)


def test_duration_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "d.flac"
    sf.write(path, tone(440.0, 2.5, 8000), 8000)
    assert audio_duration(path) == pytest.approx(2.5)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path, chunk_size=7) == file_sha256(path)
    with pytest.raises(AudioError, match=r"gone\.wav: file not found"):
        file_sha256(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match=r"gone\.wav: file not found"):
        audio_duration(tmp_path / "gone.wav")


def test_audio_format_reads_the_files_own_rate_and_channels(tmp_path):
    import soundfile as sf

    from cuelab.core.audio.io import audio_format

    path = tmp_path / "stereo.flac"
    sf.write(str(path), np.zeros((4410, 2), dtype=np.float32), 44100)
    assert audio_format(path) == (44100, 2)
    text = tmp_path / "not-audio.wav"
    text.write_text("hello", encoding="utf-8")
    assert audio_format(text) is None
