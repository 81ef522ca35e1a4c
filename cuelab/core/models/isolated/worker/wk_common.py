"""What the contrastive family handlers share (worker side: no CueLab imports).

A handler is built by ``load`` with the SPEC's LOCATION and the load options,
and answers ``info`` (kind, sample rate, details for provenance) and the
operations its kind serves. Contrastive handlers implement two methods,
:meth:`ContrastiveHandler.audio_embeddings` and
:meth:`ContrastiveHandler.text_embeddings`, plus ``logit_scale``; the
operations ``embed_audio``, ``embed_text`` and ``score_labels`` are built here.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any, Dict, List, Sequence, Tuple


def prepare_torchvision() -> None:
    """Make torchvision importable on a CPU torch: skip only its fake-kernel registrations.

    PyPI's torchvision wheels are CUDA builds. With a CPU torch their compiled
    operators do not load, and ``torchvision/_meta_registrations`` (fake kernels for
    those operators) fails at import; so does every import of transformers or timm
    that touches torchvision. Nothing else of torchvision is skipped.
    """
    import importlib.util

    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    import torch

    if torch.cuda.is_available():
        return
    try:
        import torchvision
    except RuntimeError as exc:  # "operator torchvision::nms does not exist"
        sys.stderr.write("torchvision's compiled operators are unavailable (%s)\n" % exc)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType(
            "torchvision._meta_registrations"
        )
        import torchvision  # noqa: F401


def load_tokenizer(name: str, family: str) -> Any:
    """The tokenizer of a text model a family loads by hub name (MS-CLAP's ``gpt2``).

    Workers run offline, so a text model missing from the Hugging Face cache made
    transformers say it could not connect: it read as a network fault. This says what
    is missing and how to get it.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        cache = (
            os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        )
        raise RuntimeError(
            "%s needs the text model %r, which is not in the local Hugging Face cache (%s); "
            "this is not a network fault: on a machine with internet run `hf download %s`, "
            "copy the cache here, and retry (%s)" % (family, name, cache, name, type(exc).__name__)
        ) from None


def pick_device(options: Dict[str, Any]) -> str:
    """``cuda`` when asked (or ``auto``) and available, else ``cpu``."""
    import torch

    wanted = str(options.get("device") or "auto")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda asked, but torch sees no GPU in this environment")
    if wanted in ("cuda", "auto") and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def find_checkpoint(location: str, names: Sequence[str], suffixes: Sequence[str]) -> str:
    """The checkpoint file at ``location``: the file itself, or the first of ``names`` in it."""
    if os.path.isfile(location):
        return location
    if not os.path.isdir(location):
        raise FileNotFoundError("%s is neither a checkpoint file nor a folder" % location)
    for name in names:
        path = os.path.join(location, name)
        if os.path.isfile(path):
            return path
    found = sorted(f for f in os.listdir(location) if f.endswith(tuple(suffixes)))
    if len(found) == 1:
        return os.path.join(location, found[0])
    raise FileNotFoundError(
        "no checkpoint in %s (looked for %s)" % (location, ", ".join(list(names) or suffixes))
    )


def not_allowed(message: str, remedy: str) -> PermissionError:
    """A refusal until the user allows something; ``remedy`` travels in the error response.

    ``remedy`` is ``allow-pickle`` or ``trust-remote-code`` (values of
    ``cuelab.core.errors.RemedyKind``); CueLab words it as a flag or a switch.
    """
    exc = PermissionError(message)
    exc.remedy = remedy  # type: ignore[attr-defined]
    return exc


def load_checkpoint(path: str, allow_pickle: bool) -> Tuple[Any, bool]:
    """``(object, weights_only)``: ``torch.load`` with ``weights_only=True`` first.

    A checkpoint that holds more than tensors and plain containers needs full
    unpickling, which runs code from the file: only with ``allow_pickle``.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True), True
    except Exception as exc:  # UnpicklingError and friends, depending on the torch version
        if not allow_pickle:
            raise not_allowed(
                "%s holds objects beyond tensors (%s); loading it runs code from the file"
                % (os.path.basename(path), type(exc).__name__),
                "allow-pickle",
            ) from None
        sys.stderr.write("weights_only load failed (%s); unpickling fully\n" % exc)
        return torch.load(path, map_location="cpu", weights_only=False), False


def fit_length(audio: Any, length: int) -> Any:
    """Repeat a short clip until ``length`` samples; cut a long one to its centre.

    The releases' wrappers crop a random segment; the centre keeps results
    reproducible.
    """
    import numpy as np

    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) == 0:
        raise ValueError("empty audio")
    if len(audio) < length:
        reps = int(np.ceil(length / len(audio)))
        return np.tile(audio, reps)[:length]
    start = (len(audio) - length) // 2
    return audio[start : start + length]


class ContrastiveHandler:
    """Audio-text similarity models."""

    kind = "contrastive"
    sample_rate = 48000

    def __init__(self) -> None:
        self.details = {}  # type: Dict[str, Any]

    def info(self) -> Dict[str, Any]:
        return {"kind": self.kind, "sample_rate": int(self.sample_rate), "details": self.details}

    # implemented by each family
    def audio_embeddings(self, audio: Any) -> Any:  # (1, D) torch tensor
        raise NotImplementedError

    def text_embeddings(self, texts: List[str]) -> Any:  # (N, D) torch tensor
        raise NotImplementedError

    def logit_scale(self) -> float:
        raise NotImplementedError

    # protocol operations
    def embed_audio(self, audio: Any) -> Dict[str, Any]:
        emb = self.audio_embeddings(audio.samples(self.sample_rate))
        return {"embedding": [float(x) for x in emb[0].double().cpu().tolist()]}

    def embed_text(self, texts: List[str]) -> Dict[str, Any]:
        emb = self.text_embeddings(list(texts))
        return {"embeddings": [[float(x) for x in row] for row in emb.double().cpu().tolist()]}

    def score_labels(self, audio: Any, texts: List[str]) -> Dict[str, Any]:
        """Cosine similarity of the clip with each text, and the model's scaled logits."""
        import torch

        if not texts:
            return {"cosine": [], "logits": [], "logit_scale": self.logit_scale()}
        with torch.inference_mode():
            a = torch.nn.functional.normalize(
                self.audio_embeddings(audio.samples(self.sample_rate)).double(), dim=-1
            )
            t = torch.nn.functional.normalize(self.text_embeddings(list(texts)).double(), dim=-1)
            cosine = (a @ t.T)[0].cpu().tolist()
        scale = float(self.logit_scale())
        return {
            "cosine": [float(c) for c in cosine],
            "logits": [scale * float(c) for c in cosine],
            "logit_scale": scale,
        }


class GenerativeHandler:
    """Audio language models that answer in free text; ``generate`` per request."""

    kind = "generative"
    sample_rate = 16000

    def __init__(self) -> None:
        self.details = {}  # type: Dict[str, Any]

    def info(self) -> Dict[str, Any]:
        return {"kind": self.kind, "sample_rate": int(self.sample_rate), "details": self.details}

    def audio_file(self, audio: Any) -> str:
        """A WAV file of the request's audio at the model's rate (the releases read files)."""
        import tempfile

        import numpy as np
        import soundfile

        samples = np.asarray(audio.samples(self.sample_rate), dtype=np.float32)
        handle, path = tempfile.mkstemp(suffix=".wav", prefix="cuelab-")
        os.close(handle)
        soundfile.write(path, samples, self.sample_rate, subtype="FLOAT")
        return path

    @staticmethod
    def decoding(sampling: Any, max_new_tokens: int) -> Dict[str, Any]:
        """transformers ``generate`` arguments: greedy unless a seeded draw is asked."""
        if not sampling:
            return {"do_sample": False, "max_new_tokens": int(max_new_tokens)}
        import torch

        torch.manual_seed(int(sampling.get("seed", 0)))
        return {
            "do_sample": True,
            "temperature": float(sampling["temperature"]),
            "top_p": float(sampling["top_p"]),
            "top_k": 0,
            "max_new_tokens": int(max_new_tokens),
        }
