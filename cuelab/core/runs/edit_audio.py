"""Edited audio for a run: made once, cached by content hash, measured, tokenised.

An edit run needs every clip of the split edited by every edit (the token sets
of the whole split, because a shuffle condition reassigns them across clips).
Each edited clip is written once as a 16 kHz float32 WAV under
``$CUELAB_CACHE_DIR/edits`` with a JSON sidecar of its measured effect and
flags; the file name is a hash of everything that decides the samples (the
source file's SHA-256, the edit text, the engine and its version, the rate
and the seed), so a resumed, repeated or sharded run reuses it and a changed
input never hits a stale entry. Features of edited clips then go through the
ordinary feature cache, keyed by the edited file's own hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cuelab.core.audio.edit_engines import analyse_world, apply_edit
from cuelab.core.audio.edit_measure import check_edit, measure_edit
from cuelab.core.audio.edits import EditChain, parse_edit
from cuelab.core.audio.io import LoadedClip, read_clip, write_audio
from cuelab.core.cues.feature_cache import FeatureCache, default_cache_dir
from cuelab.core.cues.norms import NormsProfile
from cuelab.core.cues.tokens import TokenSet
from cuelab.core.datasets.manifest import ManifestRow
from cuelab.core.errors import CueLabError
from cuelab.core.jobs import JobControl
from cuelab.core.runs.csvio import atomic_write_text, write_csv
from cuelab.core.runs.plan import compute_token_sets

log = logging.getLogger(__name__)

EDIT_RATE = 16000
EDITS_CSV = "edits.csv"
MEASURED_KEYS = (
    "f0_shift_st", "f0_range_ratio", "duration_ratio", "rms_change_db", "loudness_change_db",
    "f1_change_pct", "f2_change_pct", "tilt_change_db_oct", "jitter_change_pct",
    "shimmer_change_pct", "hnr_change_db",
)  # fmt: skip
#: Bumped when the measurement changes, so cached sidecars are measured again.
MEASURE_VERSION = 2


def _engine_version(engine: str) -> str:
    package = {"world": "pyworld-prebuilt", "praat": "praat-parselmouth"}[engine]
    for name in (package, package.replace("-prebuilt", "")):
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            continue
    return "unknown"


def default_edit_cache() -> Path:
    """``$CUELAB_CACHE_DIR/edits`` (beside the feature cache)."""
    return default_cache_dir().parent / "edits"


@dataclass
class EditedClip:
    """One clip edited by one edit: the cached file and its measured effect."""

    path: Path
    measured: dict[str, Any]
    flags: list[str]


class EditedAudioStore:
    """The content-hash keyed cache of edited clips (see the module docstring)."""

    def __init__(self, engine: str, root: Path | None = None) -> None:
        self.engine = engine
        self.root = root or default_edit_cache()
        self.version = _engine_version(engine)
        self._sha: dict[str, str] = {}

    def key(self, source_sha: str, chain: EditChain) -> str:
        blob = json.dumps(
            {"source": source_sha, "edit": chain.text(), "engine": self.engine,
             "version": self.version, "rate": EDIT_RATE, "measure": MEASURE_VERSION},
            sort_keys=True,
        )  # fmt: skip
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(
        self,
        source: str | Path,
        chain: EditChain,
        analyses: dict[str, Any] | None = None,
        read: Callable[[str | Path], LoadedClip] = read_clip,
    ) -> EditedClip:
        """The edited clip, made and measured on a miss (raises CueLabError on failure).

        ``analyses`` (one dict per clip) keeps the clip's WORLD analysis between its edits;
        ``read`` reads the source (a run's :meth:`FeatureCache.read`: once per run).
        """
        loaded = None if str(source) in self._sha else read(source)  # hashed once
        sha = self._sha[str(source)] if loaded is None else loaded.sha256
        self._sha[str(source)] = sha
        key = self.key(sha, chain)
        wav = self.root / key[:2] / f"{key}.wav"
        meta = wav.with_suffix(".json")
        if wav.is_file() and meta.is_file():
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
                return EditedClip(wav, dict(data["measured"]), list(data["flags"]))
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("%s: damaged edit sidecar, made again", meta)
        x, sr = (loaded or read(source)).decode(EDIT_RATE)  # the bytes hashed, if read
        analysis = None
        if self.engine == "world" and chain.needs_engine:
            if analyses is None:
                analyses = {}
            analysis = analyses.get("world") or analyse_world(x, sr)
            analyses["world"] = analysis
        # jitter / shimmer draws are seeded by the content, so the same clip edits alike
        y = apply_edit(x, sr, chain, self.engine, seed=int(sha[:8], 16), analysis=analysis)
        measured = measure_edit(x, y, sr)
        flags = check_edit(chain, measured)
        wav.parent.mkdir(parents=True, exist_ok=True)
        write_audio(wav, y, sr)
        clean = {
            k: (v if not isinstance(v, float) or v == v else None) for k, v in measured.items()
        }
        atomic_write_text(meta, json.dumps({"edit": chain.text(), "engine": self.engine,
                                            "measured": clean, "flags": flags}) + "\n")  # fmt: skip
        return EditedClip(wav, clean, flags)


@dataclass
class EditSetup:
    """Per edit text: each clip's edited file and token set (aligned with the rows kept)."""

    rows: list[ManifestRow]
    clips: dict[str, dict[str, EditedClip]] = field(default_factory=dict)  # edit -> utt -> clip
    token_sets: dict[str, list[TokenSet]] = field(default_factory=dict)


def prepare_edits(
    rows: Sequence[ManifestRow],
    edits: Sequence[str],
    engine: str,
    norms: NormsProfile,
    cache: FeatureCache,
    control: JobControl,
    workers: int | None,
    failures: dict[str, str] | None,
    store: EditedAudioStore | None = None,
) -> EditSetup:
    """Edit every row by every edit (cached) and compute the edited token sets.

    A clip that fails an edit (or its features) is dropped from the run with its
    reason in ``failures`` (raised at once when ``failures`` is None).
    """
    store = store or EditedAudioStore(engine)
    chains = [parse_edit(e) for e in edits]
    control.start(len(rows) * len(chains), "edits")
    clips: dict[str, dict[str, EditedClip]] = {c.text(): {} for c in chains}
    broken: dict[str, str] = {}
    for row in rows:
        analyses: dict[str, Any] = {}  # one WORLD analysis per clip, shared by its edits
        for chain in chains:
            control.check()
            try:
                clips[chain.text()][row.utt_id] = store.get(row.path, chain, analyses, cache.read)
            except CueLabError as exc:
                if failures is None:
                    raise
                broken.setdefault(row.utt_id, f"edit {chain.text()}: {exc}")
            control.advance(1, "edits")
    token_sets: dict[str, list[TokenSet | None]] = {}
    for chain in chains:
        text = chain.text()
        kept = [r for r in rows if r.utt_id in clips[text]]
        edited_rows = [replace(r, path=clips[text][r.utt_id].path) for r in kept]
        bad: dict[str, str] | None = None if failures is None else {}
        sets = compute_token_sets(edited_rows, norms, cache, control, workers, bad)
        by_utt = {r.utt_id: s for r, s in zip(kept, sets)}
        token_sets[text] = [by_utt.get(r.utt_id) for r in rows]
        for utt, msg in (bad or {}).items():
            broken.setdefault(utt, f"features of edit {text}: {msg}")
    if failures is not None:
        failures.update(broken)
    good = [i for i, r in enumerate(rows) if r.utt_id not in broken]
    setup = EditSetup([rows[i] for i in good], clips)
    for text, sets in token_sets.items():
        setup.token_sets[text] = [s for s in (sets[i] for i in good) if s is not None]
    return setup


def write_edits_csv(out: Path, setup: EditSetup, mine: set[str]) -> Path:
    """``edits.csv``: per clip of this run (shard) and edit, the measured effect and flags."""
    header = ["utt_id", "edit", *MEASURED_KEYS, "flags"]
    rows: list[list[object]] = []
    for text, by_utt in setup.clips.items():
        for row in setup.rows:
            if row.utt_id not in mine or row.utt_id not in by_utt:
                continue
            clip = by_utt[row.utt_id]
            cells = [
                "" if clip.measured.get(k) is None else format(clip.measured[k], ".6g")
                for k in MEASURED_KEYS
            ]
            rows.append([row.utt_id, text, *cells, "; ".join(clip.flags)])
    return write_csv(out / EDITS_CSV, header, rows)
