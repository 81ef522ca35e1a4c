"""A clip read once (read_clip / LoadedClip) decodes and fails exactly as a path does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.core.audio import io as audio
from cuelab.core.errors import AudioError
from tests.conftest import REPO

FLAC = REPO / "assets" / "demo" / "spk01_f_angry_01.flac"


def _error(fn: object) -> str:
    with pytest.raises(AudioError) as info:
        fn()  # type: ignore[operator]
    return str(info.value)


@pytest.mark.parametrize("rate", [16000, 22050, None])
def test_decode_is_load_audio(rate: int | None, tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    t = np.arange(12000) / 24000
    sf.write(stereo, np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.cos(2 * np.pi * 330 * t)], 1),
             24000, subtype="PCM_16")  # fmt: skip
    for path in (FLAC, stereo):
        clip = audio.read_clip(path)
        got, want = clip.decode(rate), audio.load_audio(path, rate)
        assert got[1] == want[1] and got[0].dtype == want[0].dtype
        assert np.array_equal(got[0], want[0])
        assert clip.sha256 == audio.file_sha256(path)


def test_failures_read_as_a_path_decode_does(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.wav"
    sf.write(truncated, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    truncated.write_bytes(truncated.read_bytes()[:8000])
    garbage = tmp_path / "noise.flac"
    garbage.write_bytes(b"not audio at all" * 64)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(800, np.float32), 16000)
    for path in (truncated, garbage, short):
        clip = audio.read_clip(path)
        assert _error(clip.decode) == _error(lambda p=path: audio.load_audio(p))
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16000 * 3, np.float32), 16000)
    assert "too long" in _error(lambda: audio.read_clip(long).decode(max_seconds=2.0))
    assert _error(lambda: audio.read_clip(tmp_path / "missing.wav")).endswith("file not found")


def test_a_large_file_is_not_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "MAX_HELD_BYTES", 1000)
    clip = audio.read_clip(FLAC)  # over the limit: hashed and decoded from disk
    assert clip.data is None
    assert clip.sha256 == audio.file_sha256(FLAC)
    assert np.array_equal(clip.decode()[0], audio.load_audio(FLAC)[0])
    assert repr(audio.read_clip(FLAC)) == f"LoadedClip(path={FLAC!r})"  # no bytes in logs
