"""The embedded reference model: a small, real, trainable classifier.

A multinomial logistic regression over

* the 88 eGeMAPS functionals of the clip (standardised with the training
  set's mean and standard deviation), and
* the concept tokens as one-hot blocks (31 values: five levels for each
  binned concept, six for VOICE_QUALITY) plus one "tokens present" flag.

It is trained on three copies of every clip: with its aligned tokens,
audio-only (all token inputs zero), and with aligned tokens but most
functionals dropped (zeroed). The first two keep both prompt conditions in
distribution; the third makes the token weights informative on their own,
so editing a token moves the prediction. It is a *baseline*
and a way to make every panel work without downloaded weights, not a model
of how an ALM reads tokens.

Stored without pickle: ``config.json`` (labels, feature names, provenance)
and ``weights.safetensors`` (numpy arrays ``coef``, ``intercept``, ``mean``,
``scale``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cuelab.core.cues.tokens import CONCEPTS, VOCAB, TokenSet, parse_tokens
from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions, ModelAdapter, Prediction
from cuelab.core.models.capabilities import ScoreRequest
from cuelab.core.safeio import atomic_path

FORMAT_VERSION = 1
TOKEN_DIM = sum(len(VOCAB[c]) for c in CONCEPTS) + 1


def token_vector(tokens: TokenSet | None) -> np.ndarray:
    """One-hot encoding of a token set (zeros and flag 0 for audio-only)."""
    vec = np.zeros(TOKEN_DIM, dtype=np.float64)
    if tokens is None:
        return vec
    offset = 0
    for concept in CONCEPTS:
        if concept in tokens:
            vec[offset + VOCAB[concept].index(tokens[concept])] = 1.0
        offset += len(VOCAB[concept])
    vec[-1] = 1.0
    return vec


@dataclass
class ReferenceWeights:
    """Parameters of the reference classifier."""

    labels: list[str]
    feature_names: list[str]
    coef: np.ndarray  # (n_labels, n_features + TOKEN_DIM)
    intercept: np.ndarray  # (n_labels,)
    mean: np.ndarray  # (n_features,)
    scale: np.ndarray  # (n_features,)
    info: dict[str, Any]

    def probs(self, functionals: dict[str, float], tokens: TokenSet | None) -> np.ndarray:
        """Class probabilities for one clip and one token set."""
        x = np.array([functionals.get(n, np.nan) for n in self.feature_names], dtype=np.float64)
        z = np.where(np.isfinite(x), (x - self.mean) / self.scale, 0.0)
        logits = self.coef @ np.concatenate([z, token_vector(tokens)]) + self.intercept
        logits -= logits.max()
        p = np.exp(logits)
        return np.asarray(p / p.sum())

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into ``folder``.

        Each file is written to a temporary name and renamed, weights first
        and config last, so a crash never leaves a truncated file.

        Raises:
            ModelError: ``folder`` is a file or cannot be written.
        """
        from safetensors.numpy import save_file

        out = Path(folder)
        config = {
            "format": "cuelab-reference",
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "feature_names": self.feature_names,
            "token_concepts": list(CONCEPTS),
            **self.info,
        }
        arrays = {
            "coef": self.coef.astype(np.float64),
            "intercept": self.intercept.astype(np.float64),
            "mean": self.mean.astype(np.float64),
            "scale": self.scale.astype(np.float64),
        }
        if out.exists() and not out.is_dir():
            raise ModelError(f"{out}: exists and is not a folder; give a folder for the model")
        try:
            # config.json is replaced last: a folder with a config has its weights
            with (
                atomic_path(out / "config.json") as tmp_c,
                atomic_path(out / "weights.safetensors") as tmp_w,
            ):
                save_file(arrays, str(tmp_w))
                tmp_c.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"{out}: cannot write reference model ({exc})") from exc
        return out

    @classmethod
    def load(cls, folder: str | Path) -> ReferenceWeights:
        """Read a saved model; errors name the folder and what is wrong."""
        from safetensors.numpy import load_file

        root = Path(folder)
        cfg_path, w_path = root / "config.json", root / "weights.safetensors"
        if not cfg_path.is_file() or not w_path.is_file():
            raise ModelError(
                f"{root}: not a reference model folder (needs config.json and weights.safetensors;"
                f" make one with `cuelab train-reference MANIFEST -o {root}`)"
            )
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            arrays = load_file(str(w_path))
        except Exception as exc:
            raise ModelError(f"{root}: cannot read reference model ({exc})") from exc
        if (
            not isinstance(cfg, dict)
            or cfg.get("format") != "cuelab-reference"
            or cfg.get("format_version") != FORMAT_VERSION
        ):
            raise ModelError(f"{root}: unsupported reference model format")
        try:
            labels = [str(x) for x in cfg["labels"]]
            names = [str(x) for x in cfg["feature_names"]]
            coef, intercept = arrays["coef"], arrays["intercept"]
            mean, scale = arrays["mean"], arrays["scale"]
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{root}: reference model lacks {exc}") from exc
        expected = {
            "coef": (len(labels), len(names) + TOKEN_DIM),
            "intercept": (len(labels),),
            "mean": (len(names),),
            "scale": (len(names),),
        }
        for key, shape in expected.items():
            if arrays[key].shape != shape:
                raise ModelError(
                    f"{root}: weight '{key}' has shape {arrays[key].shape}, config implies {shape}"
                )
            if not np.all(np.isfinite(arrays[key])):
                raise ModelError(f"{root}: weight '{key}' holds NaN or infinite values")
        if np.any(arrays["scale"] <= 0):
            raise ModelError(f"{root}: weight 'scale' must be positive")
        info = {k: v for k, v in cfg.items() if k not in ("labels", "feature_names")}
        return cls(labels, names, coef, intercept, mean, scale, info)


def train_reference(
    functionals: Sequence[dict[str, float]],
    tokens: Sequence[TokenSet],
    labels: Sequence[str],
    *,
    c: float = 0.1,
    feature_dropout: float = 0.8,
    seed: int = 0,
    info: dict[str, Any] | None = None,
) -> ReferenceWeights:
    """Fit the classifier (aligned tokens and audio-only copies of every clip).

    Args:
        functionals: eGeMAPS functionals per clip.
        tokens: aligned token set per clip.
        labels: class label per clip.
        c: inverse L2 regularisation strength.
        feature_dropout: share of functionals zeroed in the token-only copy.
        seed: seed of the dropout mask.
        info: provenance stored in ``config.json``.
    """
    from sklearn.linear_model import LogisticRegression

    if not (math.isfinite(c) and c > 0):
        raise ModelError(f"train_reference: regularisation C must be a positive number, got {c}")
    if not 0.0 <= feature_dropout <= 1.0:
        raise ModelError(
            f"train_reference: feature_dropout must lie in [0, 1], got {feature_dropout}"
        )
    if not (len(functionals) == len(tokens) == len(labels)):
        raise ModelError("train_reference: functionals, tokens and labels differ in length")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ModelError(f"train_reference: need at least 2 classes (got {classes})")
    names = sorted(functionals[0])
    x = np.array([[f.get(n, np.nan) for n in names] for f in functionals], dtype=np.float64)
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale[~(scale > 1e-12)] = 1.0
    mean = np.nan_to_num(mean)
    z = np.where(np.isfinite(x), (x - mean) / scale, 0.0)
    tok = np.stack([token_vector(t) for t in tokens])
    # Third copy: most functionals dropped, tokens kept, so the token weights
    # must carry information on their own and editing a token visibly matters.
    rng = np.random.default_rng(seed)
    keep = rng.random(z.shape) >= feature_dropout
    xs = np.vstack(
        [np.hstack([z, tok]), np.hstack([z, np.zeros_like(tok)]), np.hstack([z * keep, tok])]
    )
    ys = np.array(list(labels) * 3)
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(xs, ys)
    order = [list(clf.classes_).index(k) for k in classes]
    meta = {
        "trained": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "n_clips": len(labels),
        "regularisation_c": c,
        "feature_dropout": feature_dropout,
        "seed": seed,
        **(info or {}),
    }
    return ReferenceWeights(
        classes, names, clf.coef_[order], clf.intercept_[order], mean, scale, meta
    )


class ReferenceAdapter(ModelAdapter):
    """Adapter for the reference classifier (CPU, milliseconds per clip)."""

    family = "reference"
    scoring_method = "classifier"
    #: Its weights' sha256 is what it is; the folder only says where this checkout keeps it,
    #: so a run folder resumes from another checkout or an installed copy.
    recorded_only: ClassVar[tuple[str, ...]] = ("location",)

    def __init__(self, weights: ReferenceWeights, location: str) -> None:
        self.weights = weights
        self.location = location

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> ReferenceAdapter:
        """Load from a folder written by :meth:`ReferenceWeights.save`."""
        options.progress("reading reference model")
        return cls(ReferenceWeights.load(location), location)

    def _functionals(self, clip: Clip) -> dict[str, float]:
        if clip.features is None:
            from cuelab.core.cues.extract import extract_signal

            clip.features = extract_signal(clip.audio, clip.sr)
        return clip.features.functionals

    def score(self, request: ScoreRequest) -> list[Prediction]:
        """Probabilities over ``labels`` (which must be the model's own classes)."""
        clip, labels, token_texts = request.clip, request.labels, request.token_texts
        unknown = [lab for lab in labels if lab not in self.weights.labels]
        if unknown:
            raise ModelError(
                f"reference model at {self.location} knows labels {self.weights.labels}, "
                f"not {unknown}"
            )
        funcs = self._functionals(clip)
        out = []
        for text in token_texts:
            tokens = parse_tokens(text) if text else None
            p = self.weights.probs(funcs, tokens)
            probs = {lab: float(p[self.weights.labels.index(lab)]) for lab in labels}
            total = sum(probs.values())
            probs = {k: v / total for k, v in probs.items()}
            out.append(Prediction(label=max(probs, key=probs.__getitem__), probs=probs))
        return out

    def describe(self) -> dict[str, object]:
        """Provenance: the weights' hash and what they were trained on."""
        w = Path(self.location) / "weights.safetensors"
        digest = hashlib.sha256(w.read_bytes()).hexdigest() if w.is_file() else ""
        return {
            "family": self.family,
            "location": str(self.location),
            "weights_sha256": digest,
            "labels": self.weights.labels,
            "quant": "fp64",
            "device": "cpu",
            "trained_on": self.weights.info.get("source_manifest", ""),
        }
