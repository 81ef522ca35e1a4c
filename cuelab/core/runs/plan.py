"""Which clips a run scores, their concept tokens, and each clip's prompt variants.

Tokens are computed for the whole split (after ``limit``), not only for this
shard: ``shuffle`` reassigns the token sets of the split, so every shard must
see the same permutation. A run over a manifest with several splits and no
``split`` shuffles within each split (never across), and its notes say so. Features come from the
on-disk cache in chunks, so memory holds token sets and ids, never features
or audio of more than one chunk.

A clip's variants are one token text per (condition, seed); conditions that
do not depend on the seed run once (seed ``None``). Per-clip draws are keyed
by (seed, condition, utt id) in :mod:`cuelab.core.cues.interventions`, so a
variant is the same whichever shard, order or resume computes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cuelab.core.audio.io import LoadedClip, read_clip
from cuelab.core.cues.extract import ClipFeatures, FeatureConfig, extract_signal
from cuelab.core.cues.feature_cache import FeatureCache
from cuelab.core.cues.feature_pool import extract_many, extract_many_tolerant
from cuelab.core.cues.interventions import (
    SHUFFLE_KINDS,
    ablate,
    apply_condition,
    conflict,
    parse_condition,
    shuffle_token_sets,
)
from cuelab.core.cues.norms import NormsProfile
from cuelab.core.cues.tokens import TokenSet
from cuelab.core.datasets.manifest import Manifest, ManifestRow
from cuelab.core.errors import AudioError, CueLabError, ManifestError, one_line
from cuelab.core.jobs import JobControl
from cuelab.core.runs.config import RunConfig

FEATURE_CHUNK = 256


@dataclass(frozen=True)
class Variant:
    """One prompt variant of a clip: its condition, seed and token text (None = audio only)."""

    condition: str
    seed: int | None
    text: str | None

    @property
    def seed_text(self) -> str:
        """The ``seed`` cell of predictions.csv (empty for seed-free conditions)."""
        return "" if self.seed is None else str(self.seed)


def clip_span(audio: np.ndarray, sr: int, row: ManifestRow) -> np.ndarray:
    """The samples of a region row (``start``/``end``); the whole signal for a clip row.

    Raises:
        AudioError: the region ends after the clip (by more than a millisecond).
    """
    if row.start is None or row.end is None:
        return audio
    a, b = round(row.start * sr), round(row.end * sr)
    if b > len(audio) + sr // 1000:
        raise AudioError(
            f"{row.path}: region {row.start}-{row.end} s ends after the clip "
            f"({len(audio) / sr:.3f} s)"
        )
    return audio[a:b]


def span_features(
    row: ManifestRow, config: FeatureConfig, clip: LoadedClip | None = None
) -> ClipFeatures:
    """eGeMAPS of a region row's span (not cached: the cache is keyed by file).

    ``clip`` is the row's file when the caller has read it already.
    """
    audio, sr = (clip if clip is not None else read_clip(row.path)).decode(config.sample_rate)
    name = f"{row.path} [{row.start}-{row.end} s]"
    return extract_signal(clip_span(audio, sr, row), sr, config, name=name)


class _LinkedControl(JobControl):
    """A child control for a sub-step: cancelled whenever its parent is.

    Each item the child finishes also advances the parent (with ``message``), so a
    stage made of chunks reports per clip, not per chunk.
    """

    def __init__(self, parent: JobControl, message: str = "") -> None:
        super().__init__()
        self._parent = parent
        self._message = message

    def check(self) -> None:
        self._parent.check()
        super().check()

    def advance(self, n: int = 1, message: str = "", detail: str = "") -> None:
        super().advance(n, message, detail)
        # the stage keeps its name; what the child said (e.g. "2 workers") is the detail
        self._parent.advance(n, self._message, detail or message)


def select_rows(manifest: Manifest, config: RunConfig) -> list[ManifestRow]:
    """The split's rows (first ``limit``), with unique utterance ids."""
    rows = manifest.split(config.split)
    if not rows:
        raise ManifestError(f"{manifest.path}: no rows in split '{config.split}'")
    if config.limit is not None:
        rows = rows[: config.limit]
    seen: dict[str, int] = {}
    for row in rows:
        if row.utt_id in seen:
            raise ManifestError(
                f"{manifest.path.name} row {row.index}: utterance id '{row.utt_id}' "
                f"repeats row {seen[row.utt_id]}"
            )
        seen[row.utt_id] = row.index
    return rows


def dataset_labels(rows: Sequence[ManifestRow]) -> tuple[str, ...]:
    """The label set a dataset defines: its distinct non-empty labels, sorted.

    The one rule for both fronts: a batch run (:func:`resolve_labels`) and the
    window's live prediction score these labels when a labelled dataset is open, so
    the two give the same probabilities for the same clip.
    """
    return tuple(sorted({r.get("label") for r in rows if r.get("label")}))


def resolve_labels(rows: Sequence[ManifestRow], config: RunConfig) -> tuple[str, ...]:
    """The closed label set: the configured one, else the sorted labels of the split."""
    found = list(dataset_labels(rows))
    if config.labels is None:
        if len(found) < 2:
            raise ManifestError(
                f"{config.manifest}: need a 'label' column with at least 2 classes, or --labels"
            )
        return tuple(found)
    unknown = [lab for lab in found if lab not in config.labels]
    if unknown:
        raise ManifestError(
            f"{config.manifest}: labels {unknown} are not in the label set {list(config.labels)}"
        )
    return config.labels


def compute_token_sets(
    rows: Sequence[ManifestRow],
    norms: NormsProfile,
    cache: FeatureCache,
    control: JobControl,
    workers: int | None = None,
    failures: dict[str, str] | None = None,
) -> list[TokenSet | None]:
    """Aligned concept tokens of every row, extracting features in cached chunks.

    With ``failures`` a clip whose audio or features fail gets None and its one-line
    error under its utterance id; without it the first failure raises.
    """
    from cuelab.core.cues.concepts import concepts_for_features

    control.start(len(rows), "features")
    out: list[TokenSet | None] = []
    config = FeatureConfig()
    for start in range(0, len(rows), FEATURE_CHUNK):
        chunk = rows[start : start + FEATURE_CHUNK]
        whole = [r for r in chunk if r.start is None]  # regions: their own span, below
        paths = [r.path for r in whole]
        linked = _LinkedControl(control, "features")  # one advance per clip
        if failures is None:
            got: list[ClipFeatures | None] = list(
                extract_many(paths, config, cache, workers=workers, control=linked)
            )
        else:
            got, errors = extract_many_tolerant(
                paths, config, cache, workers=workers, control=linked
            )
            failures.update({whole[i].utt_id: msg for i, msg in errors.items()})
        by_row = dict(zip((id(r) for r in whole), got, strict=True))
        feats: list[ClipFeatures | None] = []
        for r in chunk:
            if r.start is None:
                feats.append(by_row[id(r)])
                continue
            linked.check()
            try:
                feats.append(span_features(r, config, cache.read(r.path)))
            except CueLabError as exc:
                if failures is None:
                    raise
                failures[r.utt_id] = one_line(str(exc))
                feats.append(None)
            linked.advance()
        out.extend(
            None if f is None else concepts_for_features(f, norms, r.gender).tokens
            for f, r in zip(feats, chunk)
        )
    return out


class VariantPlan:
    """Token texts of every (condition, seed) variant for the clips of one split.

    Args:
        config: the run configuration.
        utt_ids: the clips, in run order.
        token_sets: their own (aligned) tokens.
        splits: each clip's ``split`` value; shuffles stay within a split.
    """

    def __init__(
        self,
        config: RunConfig,
        utt_ids: Sequence[str],
        token_sets: Sequence[TokenSet],
        splits: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.utt_ids = list(utt_ids)
        self.token_sets = list(token_sets)
        self.index = {u: i for i, u in enumerate(self.utt_ids)}
        self.keys: list[tuple[str, int | None]] = [
            (c, s) for c in config.conditions for s in config.seeds_for(c)
        ]
        groups: dict[str, list[int]] = {}
        for i, split in enumerate(splits if splits is not None else [""] * len(self.utt_ids)):
            groups.setdefault(split or "", []).append(i)
        self.groups = list(groups.values())
        self.notes: list[str] = []
        shuffles = [c for c in config.conditions if parse_condition(c).kind in SHUFFLE_KINDS]
        if shuffles and len(self.groups) > 1:
            self.notes.append(
                f"{', '.join(shuffles)}: no split was chosen, so token sets were shuffled "
                f"within each of the manifest's {len(self.groups)} splits, never across them"
            )
        # Shuffles are the split-level draws: keep only the source index per seed.
        self.shuffle_source: dict[tuple[str, int], list[int]] = {}
        self.shuffle_counts: dict[tuple[str, int], tuple[int, int]] = {}
        for condition in shuffles:
            derange = parse_condition(condition).kind == "shuffle-derange"
            for seed in config.seeds:
                source = list(range(len(self.utt_ids)))
                own = same = 0
                for members in self.groups:
                    sets = [self.token_sets[i] for i in members]
                    result = shuffle_token_sets(sets, seed, derange=derange)
                    for i, j in zip(members, result.source):
                        source[i] = members[j]
                    own += result.own
                    same += result.same_content
                self.shuffle_source[(condition, seed)] = source
                self.shuffle_counts[(condition, seed)] = (own, same)

    def tokens(self, i: int, condition: str, seed: int | None) -> TokenSet | None:
        """The token set clip ``i`` receives under ``condition`` (None for audio-only)."""
        cond = parse_condition(condition)
        own = self.token_sets[i]
        if cond.kind == "audio-only":
            return None
        if cond.kind == "correct":
            return own
        if cond.kind == "conflict":
            return conflict(own)
        if cond.kind in SHUFFLE_KINDS:
            return self.token_sets[self.shuffle_source[(cond.name, int(seed or 0))][i]]
        if cond.kind in ("ablate", "invert"):
            return ablate(own, cond.concept, "drop" if cond.kind == "ablate" else "invert")
        # corrupt: per-clip draw keyed by (seed, P, utt id)
        return apply_condition(cond, [own], [self.utt_ids[i]], int(seed or 0))[0]

    def variants(self, utt_id: str) -> list[Variant]:
        """Every variant of one clip, in configuration order."""
        i = self.index[utt_id]
        out = []
        for condition, seed in self.keys:
            tokens = self.tokens(i, condition, seed)
            out.append(Variant(condition, seed, None if tokens is None else tokens.text()))
        return out

    def statistics(self) -> dict[str, dict[str, dict[str, float | int]]]:
        """What each condition did to the tokens, over every clip of the run.

        Per condition and seed (``""`` for seed-free conditions): ``change_rate``, the
        share of token positions that differ from the clip's own set (a dropped concept
        counts as changed), and ``same_tokens``, the clips whose whole set is unchanged;
        shuffles add ``own``, the clips that received their own set.
        """
        out: dict[str, dict[str, dict[str, float | int]]] = {}
        for condition, seed in self.keys:
            if parse_condition(condition).kind == "audio-only":
                continue
            changed = positions = same = 0
            for i, own_set in enumerate(self.token_sets):
                got = self.tokens(i, condition, seed)
                assert got is not None
                own = own_set.to_dict()
                new = got.to_dict()
                diff = sum(new.get(c) != t for c, t in own.items())
                changed += diff
                positions += len(own)
                same += diff == 0 and len(new) == len(own)
            entry: dict[str, float | int] = {
                "change_rate": changed / positions if positions else 0.0,
                "same_tokens": same,
                "clips": len(self.token_sets),
            }
            key = "" if seed is None else str(seed)
            if (condition, int(seed or 0)) in self.shuffle_counts:
                entry["own"] = self.shuffle_counts[(condition, int(seed or 0))][0]
            out.setdefault(condition, {})[key] = entry
        return out


def unique_texts(variants: Sequence[Variant]) -> list[str | None]:
    """The distinct token texts of a clip's variants, first-seen order (one model call)."""
    return list(dict.fromkeys(v.text for v in variants))
