"""openSMILE eGeMAPS features of one clip.

Concept tokens, norms and the reference model all start from one
:class:`ClipFeatures` per clip: the 88 eGeMAPSv02 functionals, the clip mean
of each of the 25 low-level descriptors (LLDs) and the frame-wise F0 track
the window draws. The ``_sma3nz`` LLDs are zero on unvoiced frames, so their
means are taken over voiced frames only; otherwise a clip with pauses would
look lower-pitched than the same speech without them.

This module extracts; :mod:`cuelab.core.cues.feature_cache` keeps the results on
disk by content hash, and :mod:`cuelab.core.cues.feature_pool` runs many clips
on a process pool.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cuelab.core.audio import io as audio
from cuelab.core.errors import CueLabError, FeatureError

log = logging.getLogger(__name__)

#: Bumped whenever ClipFeatures' content or its computation changes, so old
#: cache entries stop matching.
FEATURE_SCHEMA_VERSION = 1

#: The LLD that decides voicing: openSMILE writes 0 on unvoiced frames.
F0_COLUMN = "F0semitoneFrom27.5Hz_sma3nz"
#: Hop between LLD frames in eGeMAPS.
FRAME_HOP_S = 0.01
_VOICED_SUFFIX = "_sma3nz"
_INT16_MAX = 32767 / 32768


@lru_cache(maxsize=1)
def opensmile_version() -> str:
    """Installed openSMILE (python package) version, read without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opensmile")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the feature values of a clip.

    Attributes:
        feature_set: an ``opensmile.FeatureSet`` name (the eGeMAPS family:
            the voicing logic needs the ``F0semitoneFrom27.5Hz_sma3nz`` LLD).
        sample_rate: the rate audio is resampled to before extraction.
    """

    feature_set: str = "eGeMAPSv02"
    sample_rate: int = 16000

    def key(self) -> str:
        """Short hash of this config, the openSMILE version and the schema version."""
        payload = json.dumps(
            {
                "feature_set": self.feature_set,
                "sample_rate": self.sample_rate,
                "opensmile": opensmile_version(),
                "schema": FEATURE_SCHEMA_VERSION,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else v


def _none_to_nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


@dataclass
class ClipFeatures:
    """eGeMAPS summary of one clip.

    Attributes:
        descriptors: mean of each LLD; ``_sma3nz`` ones over voiced frames
            only (NaN when no frame is voiced).
        functionals: the openSMILE functionals (88 for eGeMAPSv02).
        voiced_ratio: voiced frames / frames.
        n_frames: number of LLD frames.
        duration_s: clip duration in seconds.
        f0_semitones: per-frame F0 in semitones re 27.5 Hz, 0 when unvoiced.
        frame_hop_s: time between F0 frames.
    """

    descriptors: dict[str, float]
    functionals: dict[str, float]
    voiced_ratio: float
    n_frames: int
    duration_s: float
    f0_semitones: list[float]
    frame_hop_s: float = FRAME_HOP_S

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN becomes None, since JSON has no NaN)."""
        return {
            "descriptors": {k: _nan_to_none(v) for k, v in self.descriptors.items()},
            "functionals": {k: _nan_to_none(v) for k, v in self.functionals.items()},
            "voiced_ratio": self.voiced_ratio,
            "n_frames": self.n_frames,
            "duration_s": self.duration_s,
            "f0_semitones": list(self.f0_semitones),
            "frame_hop_s": self.frame_hop_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipFeatures:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: when a field is missing or has the wrong type.
        """
        try:
            return cls(
                descriptors={str(k): _none_to_nan(v) for k, v in d["descriptors"].items()},
                functionals={str(k): _none_to_nan(v) for k, v in d["functionals"].items()},
                voiced_ratio=float(d["voiced_ratio"]),
                n_frames=int(d["n_frames"]),
                duration_s=float(d["duration_s"]),
                f0_semitones=[float(v) for v in d["f0_semitones"]],
                frame_hop_s=float(d.get("frame_hop_s", FRAME_HOP_S)),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed features record: {exc!r}") from exc


# --- openSMILE ------------------------------------------------------------------

_SMILES: dict[FeatureConfig, _OnePass] = {}
_SMILES_LOCK = threading.Lock()


class _OnePass:
    """eGeMAPS low-level descriptors and functionals from one openSMILE run.

    The ``opensmile`` package runs its configuration once per feature level, so
    LLDs and functionals would mean two runs over the same audio. Its own
    configuration tree ships a two-sink output
    (``shared/standard_external_data_output_multi.conf.inc``: ``extsinklld`` and
    ``extsinkfunc``); this runs the feature set's configuration once with that
    output, through the package's own ``OpenSMILE`` API, and reads both levels.
    The numbers are those of the two separate runs (a test compares them).
    """

    def __init__(self, feature_set: str) -> None:
        import opensmile

        try:
            fs = opensmile.FeatureSet[feature_set]
        except KeyError:
            known = ", ".join(m.name for m in opensmile.FeatureSet)
            raise FeatureError(
                f"unknown openSMILE feature set {feature_set!r} (known: {known})"
            ) from None
        lld = opensmile.Smile(
            feature_set=fs, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
        )
        func = opensmile.Smile(feature_set=fs, feature_level=opensmile.FeatureLevel.Functionals)
        self.lld_names = list(lld.feature_names)
        self.func_names = list(func.feature_names)
        self.config_file = lld.config_path
        root = Path(lld.default_config_root)
        self.options = {
            "source": str(root / "shared" / "standard_external_wave_input.conf.inc"),
            "sink": str(root / "shared" / "standard_external_data_output_multi.conf.inc"),
            "sinkLevelLLD": "lld",
            "sinkLevelFunc": "func",
            "bufferModeRbConf": str(root / "shared" / "BufferModeRb.conf.inc"),
            "frameModeFunctionalsConf": str(root / "shared" / "FrameModeFunctionals.conf.inc"),
            "nBits": 16,
        }

    def __call__(self, mono: np.ndarray, sr: int) -> tuple[Any, Any]:
        """(LLD frame table, one-row functionals table) of a mono signal in [-1, 1)."""
        import pandas as pd
        from opensmile.core.lib import OpenSMILE

        rows: dict[str, list[np.ndarray]] = {"lld": [], "func": []}

        def collect(level: str) -> Any:
            def callback(data: np.ndarray, meta: Any) -> None:
                rows[level].append(np.array(data, dtype=np.float64))

            return callback

        smile = OpenSMILE()
        smile.initialize(config_file=self.config_file, options={**self.options, "sampleRate": sr})
        try:
            smile.external_sink_set_callback_ex("extsinklld", collect("lld"))
            smile.external_sink_set_callback_ex("extsinkfunc", collect("func"))
            pcm = (mono * 32768).astype(np.int16)
            smile.external_audio_source_write_data("extsource", pcm.tobytes())
            smile.external_audio_source_set_eoi("extsource")
            smile.run()
        finally:
            smile.free()
        lld = pd.DataFrame(np.vstack(rows["lld"]) if rows["lld"] else np.empty((0, len(self.lld_names))),
                           columns=self.lld_names)  # fmt: skip
        func = pd.DataFrame(np.vstack(rows["func"]) if rows["func"] else np.empty((0, len(self.func_names))),
                            columns=self.func_names)  # fmt: skip
        return lld, func


def _smiles(config: FeatureConfig) -> _OnePass:
    """The one-pass extractor of ``config``, created once per process."""
    with _SMILES_LOCK:
        smile = _SMILES.get(config)
        if smile is None:
            smile = _OnePass(config.feature_set)
            _SMILES[config] = smile
        return smile


def _summarise(lld: Any, func: Any, n_samples: int, sr: int) -> ClipFeatures:
    """Turn openSMILE's LLD and functional tables into a ClipFeatures."""
    f0 = np.nan_to_num(lld[F0_COLUMN].to_numpy(dtype=np.float64), nan=0.0)
    voiced = f0 > 0
    descriptors: dict[str, float] = {}
    for col in lld.columns:
        values = lld[col].to_numpy(dtype=np.float64)
        if col.endswith(_VOICED_SUFFIX):
            values = values[voiced]
        values = values[np.isfinite(values)]
        descriptors[str(col)] = float(values.mean()) if values.size else math.nan
    functionals = {str(k): float(v) for k, v in func.iloc[0].items()}
    n_frames = int(f0.size)
    return ClipFeatures(
        descriptors=descriptors,
        functionals=functionals,
        voiced_ratio=float(voiced.mean()) if n_frames else 0.0,
        n_frames=n_frames,
        duration_s=n_samples / sr,
        f0_semitones=[float(v) for v in np.where(voiced, f0, 0.0)],
    )


def extract_signal(
    x: np.ndarray,
    sr: int,
    config: FeatureConfig = FeatureConfig(),
    *,
    name: str = "<signal>",
) -> ClipFeatures:
    """Extract eGeMAPS features from an in-memory signal.

    Args:
        x: samples (mono or multichannel; checked with :func:`audio.check_signal`).
        sr: their rate in Hz; resampled to ``config.sample_rate`` if different.
        config: the feature configuration.
        name: what to call the signal in error messages (usually its path).

    Raises:
        AudioError: the signal is empty, non-finite or shorter than 0.1 s.
        FeatureError: openSMILE failed or produced no usable frame.
    """
    mono = audio.check_signal(x, sr, name)
    if sr != config.sample_rate:
        mono = audio.resample(mono, sr, config.sample_rate)
    # openSMILE converts to int16 by scaling with 32768 and would wrap, not
    # clip, samples at or beyond full scale.
    mono = np.clip(mono, -1.0, _INT16_MAX)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lld, func = _smiles(config)(mono, config.sample_rate)
    except FeatureError:
        raise
    except Exception as exc:  # openSMILE raises assorted types
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise FeatureError(f"{name}: openSMILE failed ({msg})") from exc
    if F0_COLUMN not in lld.columns:
        raise FeatureError(f"{name}: feature set {config.feature_set} has no {F0_COLUMN} column")
    if len(lld) == 0 or len(func) == 0 or lld.isna().all(axis=None):
        raise FeatureError(f"{name}: too short for openSMILE (no complete frame)")
    return _summarise(lld, func, mono.size, config.sample_rate)


def extract_clip(
    clip: audio.LoadedClip | audio.PathLike,
    config: FeatureConfig = FeatureConfig(),
    *,
    max_seconds: float | None = 600.0,
) -> ClipFeatures:
    """Decode and extract one clip, with every failure as a CueLabError naming it.

    ``clip`` is a file already read (:func:`~cuelab.core.audio.io.read_clip`: decoded
    from its bytes, no second read) or a path (read here). Runs in worker processes
    too, so unexpected exceptions are converted to FeatureError here (they may not
    pickle, and the user needs the file name).

    Raises:
        AudioError: the file is missing, undecodable or out of limits.
        FeatureError: openSMILE failed on it.
    """
    name = str(clip.path if isinstance(clip, audio.LoadedClip) else clip)
    try:
        if isinstance(clip, audio.LoadedClip):
            x, sr = clip.decode(config.sample_rate, max_seconds=max_seconds)
        else:
            x, sr = audio.load_audio(clip, config.sample_rate, max_seconds=max_seconds)
        return extract_signal(x, sr, config, name=name)
    except CueLabError:
        raise
    except Exception as exc:
        msg = " ".join(str(exc).split())
        raise FeatureError(
            f"{name}: feature extraction failed ({type(exc).__name__}: {msg})"
        ) from exc
