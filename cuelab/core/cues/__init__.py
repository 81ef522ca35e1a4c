"""Acoustic cues: eGeMAPS features to concept tokens, and interventions on them.

``extract`` (openSMILE eGeMAPS of one clip), ``feature_cache`` (features on disk,
keyed by the file's content hash), ``feature_pool`` (many clips on a process pool),
``workers`` (how many processes pay), ``descriptors`` (which descriptors
make each concept), ``norms`` (the reference profile and robust
standardisation), ``voice_quality`` (the VOICE_QUALITY rules), ``concepts``
(scores and tokens of a clip), ``tokens`` (token sets and templates) and
``interventions`` (shuffle, conflict, corrupt, ablate, invert).

The feature names are exported here, so callers need not know which module holds them.
"""

from __future__ import annotations

from cuelab.core.cues.extract import (
    FEATURE_SCHEMA_VERSION,
    ClipFeatures,
    FeatureConfig,
    extract_clip,
    extract_signal,
)
from cuelab.core.cues.feature_cache import (
    FeatureCache,
    cache_key,
    clip_features,
    default_cache_dir,
    extract_file,
)
from cuelab.core.cues.feature_pool import extract_many, extract_many_tolerant

__all__ = [
    "FEATURE_SCHEMA_VERSION",
    "ClipFeatures",
    "FeatureCache",
    "FeatureConfig",
    "cache_key",
    "clip_features",
    "default_cache_dir",
    "extract_clip",
    "extract_file",
    "extract_many",
    "extract_many_tolerant",
    "extract_signal",
]
