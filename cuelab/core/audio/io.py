"""Audio input and output: the one place that reads, checks and writes audio.

Every other module receives audio from here as a mono float32 array at a
known rate, already checked for the problems that would otherwise surface
later as a confusing openSMILE or model failure (empty, undecodable,
non-finite, too short, too long). Problems raise :class:`AudioError` with one
line that names the file and the problem, never a raw decoder traceback.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import soundfile as sf

from cuelab.core.errors import AudioError
from cuelab.core.safeio import atomic_path

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# Output formats :func:`write_audio` picks from the suffix, with their subtype:
# WAV keeps float32 exactly; FLAC is lossless 24-bit PCM.
_WRITE_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "FLOAT"),
    ".flac": ("FLAC", "PCM_24"),
}


def _one_line(exc: BaseException) -> str:
    """Condense an exception's text to one line (decoder messages span several)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of ``x`` into one float32 channel.

    A 2-D array is read as (frames, channels) when it has more rows than
    columns and as (channels, frames) otherwise, since a clip always has more
    samples than channels; this accepts both soundfile's and librosa's layout.

    Args:
        x: 1-D samples, or 2-D multichannel samples.

    Returns:
        A 1-D float32 array.
    """
    arr = np.asarray(x)
    if arr.ndim == 1:
        return arr.astype(np.float32, copy=False)
    if arr.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D signal, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.float32)
    axis = 1 if arr.shape[0] >= arr.shape[1] else 0
    return arr.mean(axis=axis, dtype=np.float64).astype(np.float32)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a mono signal with soxr's high-quality filter.

    soxr "HQ" keeps the pass band flat to well above the range of every
    eGeMAPS descriptor, so pitch and spectral-shape features do not depend
    on a clip's original rate.

    Args:
        x: 1-D signal.
        sr_in: its rate in Hz.
        sr_out: the wanted rate in Hz.

    Returns:
        A 1-D float32 array at ``sr_out`` (a float32 copy when the rates match).
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return arr.copy()
    import soxr  # only needed when rates differ

    return np.asarray(soxr.resample(arr, sr_in, sr_out, quality="HQ"), dtype=np.float32)


#: Lowest sample rate accepted: narrow-band telephone speech is 8 kHz; below 4 kHz
#: even the first formants and the energy bands of eGeMAPS are gone.
MIN_RATE = 4000


def check_signal(
    x: np.ndarray,
    sr: int,
    name: str,
    *,
    min_seconds: float = 0.1,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Validate an in-memory signal the same way :func:`load_audio` does.

    Args:
        x: samples, mono or multichannel (see :func:`to_mono`).
        sr: sample rate in Hz.
        name: what to call the signal in error messages (usually its path).
        min_seconds: shortest accepted duration.
        max_seconds: longest accepted duration, or None for no limit.

    Returns:
        The mono float32 signal.

    Raises:
        AudioError: when the rate is below :data:`MIN_RATE`, or the signal is empty,
            has NaN/inf samples, or is too short or too long.
    """
    if sr <= 0:
        raise AudioError(f"{name}: invalid sample rate {sr}")
    if sr < MIN_RATE:
        raise AudioError(
            f"{name}: sample rate {sr} Hz is too low for speech analysis (at least {MIN_RATE} Hz)"
        )
    try:
        mono = to_mono(x)
    except (ValueError, TypeError) as exc:
        raise AudioError(f"{name}: not an audio signal ({_one_line(exc)})") from exc
    if mono.size == 0:
        raise AudioError(f"{name}: contains no audio samples")
    bad = int(np.count_nonzero(~np.isfinite(mono)))
    if bad:
        raise AudioError(f"{name}: {bad} of {mono.size} samples are not finite (NaN or inf)")
    duration = mono.size / sr
    if duration < min_seconds:
        raise AudioError(f"{name}: too short ({duration:.3f} s; the minimum is {min_seconds:g} s)")
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(f"{name}: too long ({duration:.1f} s; the limit is {max_seconds:g} s)")
    return mono


def _check_file(path: Path) -> None:
    """Raise AudioError for a missing, non-regular or empty file."""
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def _needs_fallback(path: Path) -> bool:
    """True for an MP3 when this libsndfile cannot decode MP3 (older than 1.1)."""
    return path.suffix.lower() == ".mp3" and "MP3" not in sf.available_formats()


def _decode_fallback(path: Path) -> tuple[np.ndarray, int]:
    """Decode with librosa/audioread, for formats the bundled libsndfile lacks."""
    try:
        import librosa  # slow import, rarely needed

        y, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception as exc:  # decoders raise many unrelated types
        raise AudioError(f"{path}: cannot decode audio ({_one_line(exc)})") from exc
    return np.asarray(y, dtype=np.float32), int(rate)


def audio_duration(path: PathLike) -> float:
    """Duration in seconds, read from the file header without decoding.

    Raises:
        AudioError: when the file is missing, empty or not readable audio.
    """
    p = Path(path)
    _check_file(p)
    return _header_seconds(p, str(p))


def _header_seconds(p: Path, source: str | _NamedBytes) -> float:
    """Duration from the header of ``source`` (the file ``p`` or its bytes), checked complete."""
    if _needs_fallback(p):
        import librosa

        try:
            return float(librosa.get_duration(path=str(p)))
        except Exception as exc:
            raise AudioError(f"{p}: cannot read audio header ({_one_line(exc)})") from exc
    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{p}: cannot decode audio ({_one_line(exc)})") from exc
    finally:
        if isinstance(source, _NamedBytes):
            source.seek(0)
    seconds = float(info.frames) / info.samplerate if info.samplerate > 0 else 0.0
    _check_complete(p, info.extra_info, seconds)
    return seconds


# libsndfile's header log: "data : 48640 (should be 8000)" when the data chunk
# declares more bytes than the file holds (a copy or a recording cut short).
_DATA_SIZE = re.compile(r"^\s*data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF}  # placeholders of writers that stream


def _check_complete(path: Path, header_log: str, seconds: float) -> None:
    """Raise AudioError for a file whose data chunk is cut short of what its header says.

    libsndfile reads what is there and says nothing, so a 1.5 s clip truncated
    to 0.25 s would be analysed as 0.25 s of audio.
    """
    m = _DATA_SIZE.search(header_log or "")
    if m is None:
        return
    declared, present = int(m.group(1)), int(m.group(2))
    if declared in _STREAMING_SIZES or declared <= present or present <= 0:
        return
    expected = seconds * declared / present
    raise AudioError(
        f"{path}: truncated file (its header declares {expected:.2f} s of audio, "
        f"the file holds {seconds:.2f} s); re-save it to analyse what is there"
    )


def audio_format(path: PathLike) -> tuple[int, int] | None:
    """The file's own sample rate and channel count from its header, before any
    down-mix or resampling; None where the header cannot say (MP3 without libsndfile
    support, decoded by the fallback)."""
    p = Path(path)
    if _needs_fallback(p):
        return None
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    return int(info.samplerate), int(info.channels)


def load_audio(
    path: PathLike,
    sr: int | None = 16000,
    *,
    max_seconds: float | None = 600.0,
    min_seconds: float = 0.1,
) -> tuple[np.ndarray, int]:
    """Read an audio file as a checked mono float32 signal.

    WAV, FLAC, OGG and MP3 are read with soundfile (libsndfile >= 1.1 decodes
    MP3; older builds fall back to librosa/audioread). Channels are averaged.
    The duration limit is checked from the header first, so a long recording
    given by mistake is refused before it is decoded.

    Args:
        path: the audio file.
        sr: the wanted rate in Hz (soxr HQ resampling), or None for the
            file's own rate.
        max_seconds: longest accepted duration, or None for no limit.
        min_seconds: shortest accepted duration.

    Returns:
        ``(signal, rate)``: a 1-D float32 array and its rate in Hz.

    Raises:
        AudioError: the file is missing, empty, undecodable, has non-finite
            samples, or is shorter than ``min_seconds`` / longer than
            ``max_seconds``.
    """
    p = Path(path)
    _check_file(p)
    return _decode(p, str(p), sr, max_seconds, min_seconds)


def _decode(
    p: Path,
    source: str | _NamedBytes,
    sr: int | None,
    max_seconds: float | None,
    min_seconds: float,
) -> tuple[np.ndarray, int]:
    """:func:`load_audio`'s work on ``source``: the file ``p`` itself, or its bytes."""
    header_s = _header_seconds(p, source)  # also refuses a file cut short of its header
    # Compressed formats only estimate the length: refuse early only when
    # clearly over; the exact check follows decoding.
    if max_seconds is not None and header_s > max_seconds * 1.01 + 0.1:
        raise AudioError(f"{p}: too long ({header_s:.1f} s; the limit is {max_seconds:g} s)")
    if _needs_fallback(p):
        data, native_sr = _decode_fallback(p)
    else:
        try:
            frames, native_sr = sf.read(source, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(f"{p}: cannot decode audio ({_one_line(exc)})") from exc
        # soundfile's layout is known, (frames, channels): average without guessing.
        data = frames.mean(axis=1, dtype=np.float64).astype(np.float32)
    mono = check_signal(
        data, int(native_sr), str(p), min_seconds=min_seconds, max_seconds=max_seconds
    )
    if sr is None or sr == native_sr:
        return mono, int(native_sr)
    return resample(mono, int(native_sr), sr), sr


def write_audio(path: PathLike, x: np.ndarray, sr: int) -> Path:
    """Write a signal atomically as WAV (float32) or FLAC (24-bit), by suffix.

    The file appears complete or not at all (temporary file in the same
    folder, then :func:`os.replace`), so a crash never leaves a truncated clip
    that a later run would read. FLAC is integer PCM: samples beyond ±1 are
    clipped (and logged) rather than wrapped around.

    Args:
        path: the output file; its parent folders are created.
        x: mono or multichannel samples (multichannel is written as is when
            laid out (frames, channels)).
        sr: sample rate in Hz.

    Returns:
        The path written.

    Raises:
        AudioError: unsupported suffix, non-finite samples, or a write failure.
    """
    p = Path(path)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_WRITE_FORMATS))
        raise AudioError(f"{p}: cannot write {p.suffix or 'files without a suffix'} (use {known})")
    arr = np.asarray(x, dtype=np.float32)
    if arr.size == 0:
        raise AudioError(f"{p}: refusing to write an empty signal")
    if not np.all(np.isfinite(arr)):
        raise AudioError(f"{p}: refusing to write non-finite samples (NaN or inf)")
    if fmt[0] == "FLAC":
        peak = float(np.max(np.abs(arr)))
        if peak > 1.0:
            log.warning("%s: peak %.3f exceeds 1.0; clipping for FLAC", p, peak)
            arr = np.clip(arr, -1.0, 1.0)
    try:
        with atomic_path(p) as tmp:
            sf.write(str(tmp), arr, sr, format=fmt[0], subtype=fmt[1])
    except (OSError, sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"{p}: cannot write ({_one_line(exc)})") from exc
    return p


def file_sha256(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks so memory stays flat.

    Used as the content part of cache keys: a renamed or moved clip still
    hits, an edited one misses.

    Raises:
        AudioError: when the file is missing or unreadable.
    """
    p = Path(path)
    _check_file(p)  # a FIFO or a device would block or never end
    digest = hashlib.sha256()
    try:
        with p.open("rb") as fh:
            while block := fh.read(chunk_size):
                digest.update(block)
    except FileNotFoundError as exc:
        raise AudioError(f"{p}: file not found") from exc
    except OSError as exc:
        raise AudioError(f"{p}: cannot read ({_one_line(exc)})") from exc
    return digest.hexdigest()


#: Largest file :func:`read_clip` holds in memory; a larger one is hashed and decoded
#: from disk in chunks (two reads), so memory stays flat for a long recording.
MAX_HELD_BYTES = 256 << 20


class _NamedBytes(io.BytesIO):
    """A clip's bytes for libsndfile, shown as the file's path.

    soundfile names its source in error messages with ``repr``; this keeps them
    the ones a read from the path gives (no ``<_io.BytesIO object at 0x…>``).
    """

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self._shown = name

    def __repr__(self) -> str:
        return repr(self._shown)


@dataclass(frozen=True, eq=False)
class LoadedClip:
    """One audio file read once: its bytes, their SHA-256 and the decoded signal on demand.

    A run needs a clip's content hash (the feature cache key) and its samples (for
    openSMILE and for the model). Taking both from the same bytes reads the file
    once instead of once per use, and the features cached under a hash are always
    those of the very samples decoded. Build it with :func:`read_clip`.

    Attributes:
        path: the file.
        data: its bytes, or None for a file over :data:`MAX_HELD_BYTES` (hashed and
            decoded from disk then).
    """

    path: Path
    data: bytes | None = field(repr=False)

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the file's bytes (what :func:`file_sha256` gives), hashed once."""
        if self.data is None:
            return file_sha256(self.path)
        return hashlib.sha256(self.data).hexdigest()

    def decode(
        self,
        sr: int | None = 16000,
        *,
        max_seconds: float | None = 600.0,
        min_seconds: float = 0.1,
    ) -> tuple[np.ndarray, int]:
        """The checked mono float32 signal, as :func:`load_audio` reads it from the file.

        Raises:
            AudioError: as :func:`load_audio`.
        """
        if self.data is None:
            return load_audio(self.path, sr, max_seconds=max_seconds, min_seconds=min_seconds)
        source = _NamedBytes(self.data, str(self.path))
        return _decode(self.path, source, sr, max_seconds, min_seconds)


def read_clip(path: PathLike) -> LoadedClip:
    """Read an audio file's bytes once (see :class:`LoadedClip`).

    Raises:
        AudioError: when the file is missing, empty or unreadable.
    """
    p = Path(path)
    _check_file(p)  # a FIFO or a device would block or never end
    try:
        if p.stat().st_size > MAX_HELD_BYTES:
            return LoadedClip(p, None)
        with p.open("rb") as fh:  # the one read of the clip
            data = fh.read()
    except FileNotFoundError as exc:
        raise AudioError(f"{p}: file not found") from exc
    except OSError as exc:
        raise AudioError(f"{p}: cannot read ({_one_line(exc)})") from exc
    return LoadedClip(p, data)


#: Bytes of clips one run keeps after their first read (:class:`ClipReader`).
RUN_HELD_BYTES = 64 << 20


class ClipReader:
    """Reads the clip files of one run, each once.

    A run passes over its clips more than once: the features of the whole split
    first (shuffle conditions need every clip's tokens), then each model's scoring.
    The reader keeps the clips it has read (bytes, hash, not samples) until
    ``budget`` bytes are held, and hands the same :class:`LoadedClip` to every later
    pass, so a run of that size reads and hashes each file once; the clips past
    the budget are read again, so memory stays bounded on a large dataset. Scope
    it to one run: a file changed on disk meanwhile is not read again. Safe to
    share between threads.
    """

    def __init__(self, budget: int = RUN_HELD_BYTES) -> None:
        self.budget = budget
        self.held_bytes = 0
        self._held: dict[str, LoadedClip] = {}
        self._lock = threading.Lock()

    def read(self, path: PathLike) -> LoadedClip:
        """The clip at ``path``: held from an earlier read, else read now (:func:`read_clip`).

        Raises:
            AudioError: when the file is missing, empty or unreadable.
        """
        key = os.path.abspath(path)
        with self._lock:
            held = self._held.get(key)
        if held is not None:
            return held
        clip = read_clip(path)
        if clip.data is not None:
            with self._lock:
                if key not in self._held and self.held_bytes + len(clip.data) <= self.budget:
                    self._held[key] = clip
                    self.held_bytes += len(clip.data)
        return clip
