"""Norms profiles: the reference statistics that turn descriptors into tokens.

A profile stores, for one reference corpus: per-descriptor median and IQR
(robust standardisation), quantile bin edges per concept (global, and per
gender for PITCH and FORMANTS), the VOICE_QUALITY thresholds, the number of
clips, a hash of the source manifest, the feature configuration and a
schema version. It is plain JSON so that it can be read, diffed and edited.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cuelab.core.cues.descriptors import BINNED_CONCEPTS, CONCEPT_DESCRIPTORS, GENDERED_CONCEPTS
from cuelab.core.cues.voice_quality import DEFAULT_THRESHOLDS, VQ_DESCRIPTORS
from cuelab.core.errors import NormsError
from cuelab.core.paths import assets_dir
from cuelab.core.safeio import atomic_write_text, read_json

SCHEMA_VERSION = 1
BIN_QUANTILES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
#: A gender gets its own PITCH/FORMANTS edges only with at least this many clips.
MIN_GENDER_CLIPS = 8

ASSETS = assets_dir()
DEFAULT_NORMS_PATH = ASSETS / "norms" / "demo-norms.json"


@dataclass(frozen=True)
class DescriptorStats:
    """Median and IQR of one descriptor over the reference corpus."""

    median: float
    iqr: float


@dataclass
class NormsProfile:
    """Reference statistics for concept scoring (see the module docstring)."""

    descriptors: dict[str, DescriptorStats]
    edges: dict[str, dict[str, list[float]]]
    voice_quality: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    n_clips: int = 0
    n_clips_by_gender: dict[str, int] = field(default_factory=dict)
    source_manifest: str = ""
    source_manifest_sha256: str = ""
    feature_config: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": "cuelab-norms",
            "schema_version": self.schema_version,
            "label": self.label,
            "created": self.created,
            "n_clips": self.n_clips,
            "n_clips_by_gender": self.n_clips_by_gender,
            "source_manifest": self.source_manifest,
            "source_manifest_sha256": self.source_manifest_sha256,
            "feature_config": self.feature_config,
            "bin_quantiles": list(BIN_QUANTILES),
            "descriptors": {
                k: {"median": v.median, "iqr": v.iqr} for k, v in self.descriptors.items()
            },
            "edges": self.edges,
            "voice_quality": self.voice_quality,
        }

    @property
    def sha256(self) -> str:
        """Hash of the profile's canonical JSON (recorded in run provenance)."""
        blob = json.dumps(self.to_json(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the profile atomically; returns the path.

        Raises:
            NormsError: the file cannot be written (e.g. ``path`` is a folder);
                no temporary file is left behind.
        """
        out = Path(path)
        if out.is_dir():
            raise NormsError(f"{out}: is a folder; give the profile's file name (e.g. norms.json)")
        text = json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        try:
            atomic_write_text(out, text)
        except OSError as exc:
            raise NormsError(f"{out}: cannot write norms profile ({exc.strerror or exc})") from exc
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "<json>") -> NormsProfile:
        """Validate and build a profile from parsed JSON."""
        if data.get("kind") != "cuelab-norms":
            raise NormsError(f"{source}: not a CueLab norms profile (missing kind=cuelab-norms)")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise NormsError(
                f"{source}: norms schema version {version} is not supported "
                f"(this CueLab reads version {SCHEMA_VERSION}; rebuild with `cuelab norms`)"
            )
        try:
            descriptors = {
                k: DescriptorStats(float(v["median"]), float(v["iqr"]))
                for k, v in data["descriptors"].items()
            }
            edges = {
                c: {g: [float(x) for x in e] for g, e in per.items()}
                for c, per in data["edges"].items()
            }
            voice_quality = {str(k): float(v) for k, v in data.get("voice_quality", {}).items()}
            n_clips = int(data.get("n_clips", 0))
            n_by_gender = {str(k): int(v) for k, v in data.get("n_clips_by_gender", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NormsError(f"{source}: malformed norms profile ({exc!r})") from exc
        for concept in BINNED_CONCEPTS:
            per = edges.get(concept, {})
            if "global" not in per:
                raise NormsError(f"{source}: no global bin edges for {concept}")
            for g, e in per.items():
                if (
                    len(e) != len(BIN_QUANTILES)
                    or not all(math.isfinite(x) for x in e)
                    or any(b < a for a, b in itertools.pairwise(e))
                ):
                    raise NormsError(
                        f"{source}: {concept}/{g} edges must be 4 finite increasing numbers"
                    )
        for name, st in descriptors.items():
            if not (math.isfinite(st.median) and math.isfinite(st.iqr) and st.iqr > 0):
                raise NormsError(f"{source}: descriptor {name} needs a finite median and IQR > 0")
        needed = sorted(
            {n for group in CONCEPT_DESCRIPTORS.values() for n, _ in group} - set(descriptors)
        )
        if needed:
            raise NormsError(
                f"{source}: no statistics for descriptor {needed[0]}"
                + (f" and {len(needed) - 1} more" if len(needed) > 1 else "")
                + "; every concept would be MID"
            )
        unknown = sorted(set(voice_quality) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise NormsError(
                f"{source}: unknown voice-quality threshold {unknown[0]!r} "
                f"(known: {', '.join(sorted(DEFAULT_THRESHOLDS))})"
            )
        bad = sorted(k for k, v in voice_quality.items() if not math.isfinite(v))
        if bad:
            raise NormsError(f"{source}: voice-quality threshold {bad[0]!r} is not a finite number")
        return cls(
            descriptors=descriptors,
            edges=edges,
            voice_quality={**DEFAULT_THRESHOLDS, **voice_quality},
            n_clips=n_clips,
            n_clips_by_gender=n_by_gender,
            source_manifest=str(data.get("source_manifest", "")),
            source_manifest_sha256=str(data.get("source_manifest_sha256", "")),
            feature_config=dict(data.get("feature_config", {})),
            label=str(data.get("label", "")),
            created=str(data.get("created", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> NormsProfile:
        """Read a profile JSON file, with one-line errors naming the file."""
        p = Path(path)
        data = read_json(p, "norms profile", NormsError)
        if not isinstance(data, dict):
            raise NormsError(f"{p}: norms profile must be a JSON object")
        return cls.from_json(data, source=str(p))


@lru_cache(maxsize=1)
def default_norms() -> NormsProfile:
    """The shipped profile built from the synthetic demo corpus."""
    return NormsProfile.load(DEFAULT_NORMS_PATH)


def load_norms(path: str | Path | None) -> NormsProfile:
    """A profile from ``path``, or the shipped default when ``path`` is None."""
    return default_norms() if path is None else NormsProfile.load(path)


def robust_z(descriptors: Mapping[str, float], norms: NormsProfile) -> dict[str, float]:
    """Standardise every descriptor the profile knows: ``(x − median) / IQR``."""
    out: dict[str, float] = {}
    for name, stats in norms.descriptors.items():
        value = float(descriptors.get(name, math.nan))
        out[name] = (value - stats.median) / stats.iqr if math.isfinite(value) else math.nan
    return out


def concept_scores(descriptors: Mapping[str, float], norms: NormsProfile) -> dict[str, float]:
    """Mean signed robust z-score of each binned concept's descriptors (NaN if none defined)."""
    z = robust_z(descriptors, norms)
    scores: dict[str, float] = {}
    for concept, group in CONCEPT_DESCRIPTORS.items():
        values = [sign * z[name] for name, sign in group if math.isfinite(z.get(name, math.nan))]
        scores[concept] = float(np.mean(values)) if values else math.nan
    return scores


def _robust_stats(values: np.ndarray) -> DescriptorStats:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return DescriptorStats(0.0, 1.0)
    q1, med, q3 = np.percentile(finite, [25, 50, 75])
    iqr = float(q3 - q1)
    if iqr <= 1e-9:  # constant descriptor: fall back to a scale that cannot blow up
        iqr = float(np.std(finite) * 1.349) or 1.0
    return DescriptorStats(float(med), iqr)


def _edges(scores: np.ndarray) -> list[float]:
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return [-1.5, -0.5, 0.5, 1.5]
    return [float(x) for x in np.quantile(finite, BIN_QUANTILES)]


def build_norms(
    descriptor_rows: Sequence[Mapping[str, float]],
    genders: Sequence[str | None],
    *,
    source_manifest: str = "",
    source_manifest_sha256: str = "",
    feature_config: Mapping[str, Any] | None = None,
    label: str = "",
    thresholds: Mapping[str, float] | None = None,
) -> NormsProfile:
    """Build a profile from the descriptor means of a reference corpus.

    Args:
        descriptor_rows: one mapping of eGeMAPS LLD means per clip.
        genders: ``"m"``, ``"f"`` or empty per clip (same order).
        thresholds: VOICE_QUALITY thresholds (default: the documented ones).
    """
    if len(descriptor_rows) < 5:
        raise NormsError(f"a norms profile needs at least 5 clips (got {len(descriptor_rows)})")
    if len(genders) != len(descriptor_rows):
        raise NormsError("build_norms: one gender entry per clip is required")
    names = sorted(
        {n for group in CONCEPT_DESCRIPTORS.values() for n, _ in group} | set(VQ_DESCRIPTORS)
    )
    table = {n: np.array([float(r.get(n, math.nan)) for r in descriptor_rows]) for n in names}
    stats = {n: _robust_stats(v) for n, v in table.items()}
    g = np.array([(x or "").strip().lower() for x in genders])
    profile = NormsProfile(descriptors=stats, edges={})
    score_rows = [concept_scores(r, profile) for r in descriptor_rows]
    counts = {k: int((g == k).sum()) for k in ("m", "f") if (g == k).any()}
    for concept in BINNED_CONCEPTS:
        scores = np.array([row[concept] for row in score_rows])
        per = {"global": _edges(scores)}
        if concept in GENDERED_CONCEPTS:
            for gender, n in counts.items():
                if n >= MIN_GENDER_CLIPS:
                    per[gender] = _edges(scores[g == gender])
        profile.edges[concept] = per
    profile.voice_quality = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    profile.n_clips = len(descriptor_rows)
    profile.n_clips_by_gender = counts
    profile.source_manifest = source_manifest
    profile.source_manifest_sha256 = source_manifest_sha256
    profile.feature_config = dict(feature_config or {})
    profile.label = label
    profile.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return profile
