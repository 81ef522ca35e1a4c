"""Step one audio edit over a grid and watch the label probabilities and concept scores.

``cuelab sweep AUDIO --model SPEC --edit pitch --from -6st --to +6st --steps 13``
edits the clip at each amount (every point resynthesised through the engine,
the neutral amount included, so the curve has no resynthesis jump at 0),
computes the concept scores and tokens of the edited audio, and asks the model
for the label distribution. Over a manifest the same is done per clip and the
mean curve gets a 95 % t-interval over clips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from cuelab.core.audio.edit_engines import analyse_world, apply_edit
from cuelab.core.audio.edits import KINDS, RESYNTH, Edit, EditChain, EditError, check_engine
from cuelab.core.audio.edits import parse_edit as _parse
from cuelab.core.cues.concepts import BINNED_CONCEPTS, concepts_for_features
from cuelab.core.cues.extract import ClipFeatures, extract_signal
from cuelab.core.cues.norms import NormsProfile
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import Clip, ModelAdapter
from cuelab.core.tasks.prompts import TaskPrompt

MAX_STEPS = 101


@dataclass(frozen=True)
class SweepGrid:
    """One edit kind stepped from ``start`` to ``stop`` in ``steps`` amounts."""

    kind: str
    start: float
    stop: float
    steps: int

    def amounts(self) -> list[float]:
        return [round(float(a), 9) + 0.0 for a in np.linspace(self.start, self.stop, self.steps)]

    def chains(self) -> list[EditChain]:
        return [EditChain((Edit(self.kind, a),)) for a in self.amounts()]


def parse_grid(kind: str, start: str, stop: str, steps: int) -> SweepGrid:
    """Check the kind, read ``--from`` / ``--to`` in the kind's unit (``-6st``), check steps."""
    name = kind.strip().lower()
    if name == RESYNTH or name not in KINDS:
        raise EditError(f"sweep: unknown edit kind {kind!r} (known: {', '.join(KINDS)})")
    if not 2 <= steps <= MAX_STEPS:
        raise EditError(f"sweep: --steps must be between 2 and {MAX_STEPS}, got {steps}")
    ends = []
    for flag, text in (("--from", start), ("--to", stop)):
        try:
            ends.append(_parse(f"{name}={text}").edits[0].amount)
        except EditError as exc:
            raise EditError(f"sweep {flag}: {exc}") from None
    if ends[0] == ends[1]:
        raise EditError("sweep: --from and --to are the same amount")
    return SweepGrid(name, ends[0], ends[1], steps)


@dataclass
class SweepPoint:
    """One clip at one amount."""

    utt_id: str
    amount: float
    edit: str
    probs: dict[str, float]
    prediction: str
    scores: dict[str, float]
    tokens: str


def sweep_clip(
    audio: np.ndarray,
    sr: int,
    utt_id: str,
    grid: SweepGrid,
    model: ModelAdapter,
    task: TaskPrompt,
    labels: Sequence[str],
    *,
    engine: str = "world",
    norms: NormsProfile | None = None,
    gender: str | None = None,
    tokens: str = "edited",
    control: JobControl | None = None,
) -> Iterator[SweepPoint]:
    """The sweep points of one clip (``tokens``: ``edited``, ``original`` or ``none``)."""
    original: ClipFeatures | None = None
    if tokens == "original":
        original = extract_signal(audio, sr, name=utt_id)
    analysis = None
    for chain in grid.chains():
        if control is not None:
            control.check()
        check_engine(engine, chain)
        if analysis is None and engine == "world" and chain.needs_engine:
            analysis = analyse_world(audio, sr)  # once per clip, shared by the grid
        y = apply_edit(audio, sr, chain, engine, analysis=analysis)
        feats = extract_signal(y, sr, name=f"{utt_id} ({chain.text()})")
        concepts = concepts_for_features(feats, norms, gender)
        text: str | None = None
        if tokens == "edited":
            text = concepts.text()
        elif tokens == "original" and original is not None:
            text = concepts_for_features(original, norms, gender).text()
        clip = Clip(audio=y, sr=sr, utt_id=utt_id, features=feats, meta={"gender": gender or ""})
        pred = model.score_labels(clip, task, labels, [text])[0]
        yield SweepPoint(
            utt_id,
            chain.edits[0].amount,
            chain.text(),
            {lab: float(pred.probs.get(lab, math.nan)) for lab in labels},
            "" if pred.unparsed or pred.label is None else pred.label,
            {c: float(concepts.scores[c]) for c in BINNED_CONCEPTS},
            text or "",
        )
        if control is not None:
            control.advance(1, utt_id)


def point_row(p: SweepPoint, labels: Sequence[str]) -> list[object]:
    """A sweep.csv row."""
    return [
        p.utt_id, p.edit, format(p.amount, "g"), p.prediction,
        *(_num(p.probs[lab]) for lab in labels),
        *(_num(p.scores[c]) for c in BINNED_CONCEPTS), p.tokens,
    ]  # fmt: skip


def point_header(labels: Sequence[str]) -> list[str]:
    return ["utt_id", "edit", "amount", "prediction", *(f"p_{lab}" for lab in labels),
            *(f"score_{c}" for c in BINNED_CONCEPTS), "tokens"]  # fmt: skip


def _num(x: float) -> str:
    return "" if not math.isfinite(x) else format(x, ".6g")


def mean_curves(
    points: Sequence[SweepPoint], labels: Sequence[str]
) -> tuple[list[str], list[list[object]]]:
    """Per amount: n clips, and mean with a 95 % t-interval of each P(label) and score.

    A probability's interval is clipped to [0, 1]: with few clips near 0 or 1 the
    t-interval runs past what a probability can be.
    """
    from scipy import stats as st

    series: list[tuple[str, Callable[[SweepPoint], float]]] = [
        *((f"p_{lab}", lambda p, lab=lab: p.probs[lab]) for lab in labels),
        *((f"score_{c}", lambda p, c=c: p.scores[c]) for c in BINNED_CONCEPTS),
    ]
    header = ["amount", "n"]
    for name, _ in series:
        header += [f"{name}_mean", f"{name}_ci_low", f"{name}_ci_high"]
    rows: list[list[object]] = []
    for amount in sorted({p.amount for p in points}):
        at = [p for p in points if p.amount == amount]
        row: list[object] = [format(amount, "g"), len(at)]
        for name, get in series:
            v = np.array([get(p) for p in at], dtype=float)
            v = v[np.isfinite(v)]
            if v.size == 0:
                row += ["", "", ""]
                continue
            mean = float(v.mean())
            half = (
                float(st.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
                if v.size > 1
                else math.nan
            )
            low, high = mean - half, mean + half
            if name.startswith("p_"):
                low, high = max(low, 0.0), min(high, 1.0)
            row += [_num(mean), _num(low), _num(high)]
        rows.append(row)
    return header, rows
