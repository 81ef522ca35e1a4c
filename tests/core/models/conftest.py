"""Tiny random-weight checkpoints with working processors, built once per session.

They are saved to temporary folders and loaded back through the same
``from_pretrained`` path a user's real checkpoint takes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cuelab.core.models import tiny
from cuelab.core.models.base import Clip
from cuelab.core.tasks.prompts import TaskPrompt, load_task


@pytest.fixture(scope="session")
def qwen2_audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio"))


@pytest.fixture(scope="session")
def omni_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build_qwen_omni(tmp_path_factory.mktemp("qwen-omni"))


@pytest.fixture(scope="session")
def af3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build_audio_flamingo3(tmp_path_factory.mktemp("af3"))


@pytest.fixture(scope="session")
def clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build_clap(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="session")
def family_dirs(qwen2_audio_dir: Path, omni_dir: Path, af3_dir: Path) -> dict[str, Path]:
    return {"qwen2-audio": qwen2_audio_dir, "qwen2.5-omni": omni_dir, "audio-flamingo-3": af3_dir}


def voiced_tone(seconds: float = 1.0, f0: float = 140.0, sr: int = 16000) -> np.ndarray:
    """A harmonic tone with a slow pitch glide: speech-like enough for the encoders."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 2 * t))) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (0.2 * wave / np.max(np.abs(wave))).astype(np.float32)


@pytest.fixture(scope="session")
def clip() -> Clip:
    return Clip(audio=voiced_tone(), sr=16000, utt_id="tone")


@pytest.fixture(scope="session")
def task() -> TaskPrompt:
    return load_task("ser")
