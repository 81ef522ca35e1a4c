"""The on-disk feature cache: one entry per (file content, feature configuration).

Extraction costs ~0.07 s per 3 s clip on one core, so a dataset is worth
caching: entries are JSON files keyed by the SHA-256 of the file's bytes and
:meth:`~cuelab.core.cues.extract.FeatureConfig.key` (feature set, rate, openSMILE
version and :data:`~cuelab.core.cues.extract.FEATURE_SCHEMA_VERSION`), so any
change that could alter the numbers misses the cache instead of serving stale
values. A clip already read (:class:`~cuelab.core.audio.io.LoadedClip`) is
looked up by the hash of the bytes read, and extracted from them on a miss.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

from cuelab.core.audio import io as audio
from cuelab.core.cues.extract import ClipFeatures, FeatureConfig, extract_clip
from cuelab.core.errors import AudioError
from cuelab.core.safeio import atomic_write_text

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$CUELAB_CACHE_DIR/features``, else ``~/.cache/cuelab/features``."""
    env = os.environ.get("CUELAB_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "cuelab"
    return base / "features"


def cache_key(file_sha256: str, config: FeatureConfig) -> str:
    """Cache key of a file's content under a feature configuration."""
    return f"{file_sha256}-{config.key()}"


class FeatureCache:
    """Features on disk, one JSON file per (file content, config) key.

    Entries sit in two levels of fan-out folders (``ab/cd/abcd….json``) so no
    folder grows huge. Writes are atomic; an unreadable or malformed entry is
    logged and treated as a miss (the next :meth:`put` replaces it). Failing
    to write is logged, not raised: the cache only saves time.
    """

    def __init__(self, root: Path | None = None, *, reader: audio.ClipReader | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.reader = reader

    def for_run(self) -> FeatureCache:
        """This cache for one run: the same entries, and a fresh :class:`~cuelab.core.audio.io.ClipReader`.

        The features pass and each model's scoring then read a clip file once
        between them (:meth:`read`), up to the reader's budget.
        """
        run = copy.copy(self)
        run.reader = audio.ClipReader()
        return run

    def read(self, path: audio.PathLike) -> audio.LoadedClip:
        """Read a clip file, through this run's reader when there is one.

        Raises:
            AudioError: when the file is missing, empty or unreadable.
        """
        return self.reader.read(path) if self.reader is not None else audio.read_clip(path)

    def path_for(self, key: str) -> Path:
        """File that holds (or would hold) the entry ``key``."""
        return self.root / key[:2] / key[2:4] / f"{key}.json"

    def get(self, key: str) -> ClipFeatures | None:
        """The cached features of ``key``, or None on a miss or a corrupt entry."""
        path = self.path_for(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("feature cache: cannot read %s (%s); recomputing", path, exc)
            return None
        try:
            record = json.loads(text)
            if record.get("key") != key:
                raise ValueError("entry belongs to another key")
            return ClipFeatures.from_dict(record["features"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("feature cache: corrupt entry %s (%s); recomputing", path, exc)
            return None

    def put(self, key: str, feats: ClipFeatures) -> None:
        """Store ``feats`` under ``key`` (atomically; errors are logged)."""
        path = self.path_for(key)
        try:
            # allow_nan=False refuses inf (NaN is already None): a miss next time,
            # never a crash of the extraction that produced the values.
            text = json.dumps({"key": key, "features": feats.to_dict()}, allow_nan=False)
            atomic_write_text(path, text)
        except (OSError, ValueError) as exc:
            log.warning("feature cache: cannot write %s (%s)", path, exc)


def checked_hit(path: Path, feats: ClipFeatures, max_seconds: float | None) -> ClipFeatures:
    """Apply the duration limit to a cache hit, as a fresh decode would."""
    if max_seconds is not None and feats.duration_s > max_seconds:
        raise AudioError(
            f"{path}: too long ({feats.duration_s:.1f} s; the limit is {max_seconds:g} s)"
        )
    return feats


def clip_features(
    clip: audio.LoadedClip,
    config: FeatureConfig = FeatureConfig(),
    cache: FeatureCache | None = None,
    *,
    max_seconds: float | None = 600.0,
) -> ClipFeatures:
    """Features of a clip already read, served from ``cache`` when possible.

    The cache key is the hash of the bytes read; a miss is extracted from those
    same bytes, so the file is not read again.

    Raises:
        AudioError: the clip is undecodable or out of limits.
        FeatureError: openSMILE failed on it.
    """
    if cache is None:
        return extract_clip(clip, config, max_seconds=max_seconds)
    key = cache_key(clip.sha256, config)
    hit = cache.get(key)
    if hit is not None:
        return checked_hit(clip.path, hit, max_seconds)
    feats = extract_clip(clip, config, max_seconds=max_seconds)
    cache.put(key, feats)
    return feats


def extract_file(
    path: audio.PathLike,
    config: FeatureConfig = FeatureConfig(),
    cache: FeatureCache | None = None,
    *,
    max_seconds: float | None = 600.0,
) -> ClipFeatures:
    """Features of an audio file, served from ``cache`` when possible (one read of it).

    Raises:
        AudioError: the file is missing, undecodable or out of limits.
        FeatureError: openSMILE failed on it.
    """
    if cache is None:
        return extract_clip(Path(path), config, max_seconds=max_seconds)
    return clip_features(cache.read(path), config, cache, max_seconds=max_seconds)
