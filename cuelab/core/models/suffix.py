"""Scoring label continuations on top of a cached prefix, in two stages.

After the shared prefix (audio + instruction), each token variant adds its own
part (the token line and the assistant turn opening), shared by all labels of
that variant; each label then adds only its few tokens. Stage one runs the
variants' parts (one row per variant), stage two the labels (one row per
variant x label) on top of the stage-one cache, so no token is computed
twice. Rows are right-padded; padding is masked out and explicit positions
put every real token where a full forward pass would. Only the positions whose
logits are read are projected onto the vocabulary (``keep``, see
:meth:`~cuelab.core.models.hf_alm.AudioLMAdapter.run_suffix`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cuelab.core.models.scoring import ScoredRow, common_prefix_len


@dataclass
class PrefixState:
    """An encoded prefix: its KV cache, the logits of its last position, its length."""

    cache: Any
    last_logits: Any
    length: int
    extra: dict[str, Any] = field(default_factory=dict)


class SuffixRunner(Protocol):
    """What the scorers need of an adapter (:class:`~cuelab.core.models.hf_alm.AudioLMAdapter`)."""

    tokenizer: Any

    def run_suffix(
        self, state: PrefixState, cache: Any, ids: Any, mask: Any, starts: Any, keep: Any
    ) -> Any:  # pragma: no cover - a protocol
        """Logits of ``ids`` run on top of ``cache`` (a copy of ``state``'s prefix cache),
        at the positions ``keep`` only (``logits_to_keep``: an int or a 1-D tensor)."""
        ...


@dataclass(frozen=True)
class VariantGroup:
    """One variant's rows: the ids it adds after the prefix, and each label's remainder.

    Attributes:
        variant: index of the token variant.
        shared: ids after the prefix that every label row of this variant shares.
        rows: the variant's rows.
        rests: per row, the ids after ``shared`` (they hold the whole label span).
        starts: per row, index in its rest of the first label token.
    """

    variant: int
    shared: tuple[int, ...]
    rows: tuple[ScoredRow, ...]
    rests: tuple[tuple[int, ...], ...]
    starts: tuple[int, ...]

    @property
    def rest_width(self) -> int:
        """The longest remainder."""
        return max(len(r) for r in self.rests)


def split_rows(rows: Sequence[ScoredRow], k: int) -> list[VariantGroup]:
    """Group rows by variant and split each after the shared prefix of length ``k``."""
    by_variant: dict[int, list[ScoredRow]] = {}
    for row in rows:
        by_variant.setdefault(row.variant, []).append(row)
    groups = []
    for variant, members in by_variant.items():
        first = members[0].ids[k:]
        n = min(row.span_start for row in members) - k
        for row in members[1:]:
            n = min(n, common_prefix_len(first, row.ids[k:]))
        shared = tuple(first[:n])
        rests = tuple(tuple(row.ids[k + n :]) for row in members)
        starts = tuple(row.span_start - k - n for row in members)
        groups.append(VariantGroup(variant, shared, tuple(members), rests, starts))
    return groups


def _padded(seqs: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any]:
    import torch

    width = max(1, max(len(s) for s in seqs))
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
    return ids, mask


def _span_logprob(predictors: Any, targets: Any) -> float:
    """Summed log-probability of ``targets``, row j predicted by ``predictors[j]``."""
    import torch

    logp = torch.log_softmax(predictors.float(), dim=-1)
    return float(logp.gather(1, targets[:, None]).sum())


def _read_range(spans: Sequence[tuple[int, int]]) -> tuple[int, Any]:
    """The positions of a label pass whose logits are read, as ``(first, keep)``.

    Row r (its label span ``start..end`` in its rest) reads the logits at positions
    ``max(start - 1, 0) .. end - 2`` (position 0's predecessor is the stage-one logits).
    ``keep`` is the union over rows (one index range for every row of the batch).
    """
    import torch

    lo = min(max(s - 1, 0) for s, _ in spans)
    hi = max(e - 1 for _, e in spans)
    if hi <= lo:  # nothing read beyond the stage-one logits: keep one position
        return lo, torch.tensor([lo])
    return lo, torch.arange(lo, hi)


def _predictors(first: Any, kept: Any, lo: int, start: int, end: int) -> Any:
    """Rows predicting the span ``start..end`` from ``first`` and the kept logits."""
    import torch

    body = kept[max(start - 1, 0) - lo : end - 1 - lo]
    return torch.cat([first[None, :], body], 0) if start == 0 else body


def score_batched(
    adapter: SuffixRunner, state: PrefixState, groups: Sequence[VariantGroup]
) -> dict[tuple[int, int], float]:
    """Score all rows of ``groups`` in two batched passes over a copy of the prefix cache."""
    import torch

    device = state.last_logits.device
    pad = adapter.tokenizer.pad_token_id or 0
    n_groups, n_labels = len(groups), len(groups[0].rows)
    cache = copy.deepcopy(state.cache)
    if n_groups > 1:
        cache.batch_repeat_interleave(n_groups)
    ids1, mask1 = (t.to(device) for t in _padded([g.shared for g in groups], pad))
    prefix_mask = torch.ones((n_groups, state.length), dtype=torch.long, device=device)
    starts1 = torch.full((n_groups,), state.length, dtype=torch.long, device=device)
    read = sorted({len(g.shared) - 1 for g in groups if g.shared}) or [0]
    column = {p: j for j, p in enumerate(read)}
    logits1 = adapter.run_suffix(state, cache, ids1, torch.cat([prefix_mask, mask1], 1), starts1,
                                 torch.tensor(read))  # fmt: skip
    last = []
    for i, g in enumerate(groups):
        last.append(logits1[i, column[len(g.shared) - 1]] if g.shared else state.last_logits[0, -1])

    cache.batch_repeat_interleave(n_labels)
    rests = [r for g in groups for r in g.rests]
    ids2, mask2 = (t.to(device) for t in _padded(rests, pad))
    before = torch.cat([prefix_mask, mask1], 1).repeat_interleave(n_labels, dim=0)
    starts2 = torch.tensor(
        [state.length + len(g.shared) for g in groups for _ in g.rows], device=device
    )
    flat = [(gi, row, rest, start) for gi, g in enumerate(groups) for row, rest, start in
            zip(g.rows, g.rests, g.starts)]  # fmt: skip
    lo, keep = _read_range([(start, len(rest)) for _, _, rest, start in flat])
    logits2 = adapter.run_suffix(state, cache, ids2, torch.cat([before, mask2], 1), starts2, keep)
    scores = {}
    for i, (gi, row, rest, start) in enumerate(flat):
        predictors = _predictors(last[gi], logits2[i], lo, start, len(rest))
        targets = ids2[i, start : len(rest)]
        scores[(row.variant, row.label)] = _span_logprob(predictors, targets)
    return scores


def score_sequential(
    adapter: SuffixRunner, state: PrefixState, groups: Sequence[VariantGroup]
) -> dict[tuple[int, int], float]:
    """Score rows one at a time on the prefix cache itself, cropping it back after each."""
    import torch

    device = state.last_logits.device
    cache = state.cache
    scores = {}
    for g in groups:
        length = state.length
        first = state.last_logits[0, -1]
        if g.shared:
            ids = torch.tensor([g.shared], device=device)
            mask = torch.ones((1, length + len(g.shared)), dtype=torch.long, device=device)
            start = torch.tensor([length], device=device)
            first = adapter.run_suffix(state, cache, ids, mask, start, 1)[0, -1]
            length += len(g.shared)
        for row, rest, span in zip(g.rows, g.rests, g.starts):
            ids = torch.tensor([rest], device=device)
            mask = torch.ones((1, length + len(rest)), dtype=torch.long, device=device)
            lo, keep = _read_range([(span, len(rest))])
            logits = adapter.run_suffix(
                state, cache, ids, mask, torch.tensor([length], device=device), keep
            )
            cache.crop(-len(rest))
            predictors = _predictors(first, logits[0], lo, span, len(rest))
            scores[(row.variant, row.label)] = _span_logprob(predictors, ids[0, span:])
        if g.shared:
            cache.crop(-len(g.shared))
    return scores
