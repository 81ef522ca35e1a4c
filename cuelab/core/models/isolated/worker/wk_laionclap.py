"""LAION-CLAP (``laion_clap`` from PyPI): the package's ``CLAP_Module`` and its embedding calls.

The released checkpoints (``630k-audioset-best.pt`` ...) are
``{"state_dict": {"module.<name>": tensor}, ...}`` saved from DDP. The package's
``load_ckpt`` unpickles them fully; here they are read with ``weights_only``
first (full unpickling only with ``--allow-pickle``), then given the same
treatment as ``clap_module.factory.load_state_dict`` (``module.`` prefix off,
the ``position_ids`` buffer of older transformers dropped). Embeddings come
from ``CLAP_Module.get_audio_embedding_from_data`` (48 kHz, int16 round trip,
10 s, repeat-padded) and ``get_text_embedding`` (RoBERTa, 77 tokens). Clips
over 10 s are cut to their centre here (the package crops at random).

torchvision's PyPI wheels are CUDA builds; with a CPU torch their compiled
operators do not load and ``torchvision/_meta_registrations`` fails at import.
laion_clap imports torchvision only for image transforms and a batch-norm
helper that the audio path never calls, so the worker skips just that module
(:func:`wk_common.prepare_torchvision`).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

from wk_common import (
    ContrastiveHandler,
    find_checkpoint,
    fit_length,
    load_checkpoint,
    pick_device,
    prepare_torchvision,
)

WEIGHTS = ("630k-audioset-best.pt", "630k-best.pt", "music_speech_audioset_epoch_15_esc_89.98.pt")
MAX_SAMPLES = 480000


def import_laion_clap() -> Any:
    """Import laion_clap (transformers imports torchvision too: prepare it first)."""
    prepare_torchvision()
    import laion_clap

    return laion_clap


class LaionClapHandler(ContrastiveHandler):
    """One original LAION-CLAP checkpoint."""

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        import torch

        path = find_checkpoint(location, WEIGHTS, (".pt", ".ckpt"))
        name = os.path.basename(path)
        fusion = "fusion" in name
        if fusion:
            try:
                import torchaudio  # noqa: F401
            except ImportError:
                raise ValueError(
                    "%s is a fusion checkpoint: laion_clap's feature fusion needs torchaudio, "
                    "which is not installed (no build for this torch)" % name
                ) from None
        amodel = str(options.get("variant") or ("HTSAT-base" if "music" in name else "HTSAT-tiny"))
        laion_clap = import_laion_clap()
        self.device = pick_device(options)
        self.module = laion_clap.CLAP_Module(
            enable_fusion=fusion, device=self.device, amodel=amodel
        )
        checkpoint, weights_only = load_checkpoint(path, bool(options.get("allow_pickle")))
        state = checkpoint
        if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
            state = checkpoint["state_dict"]
        if not isinstance(state, dict) or not state:
            raise ValueError("%s holds no state dict" % name)
        if next(iter(state)).startswith("module"):
            state = {k[7:]: v for k, v in state.items()}
        state = dict(state)
        state.pop("text_branch.embeddings.position_ids", None)
        self.module.model.load_state_dict(state)
        self.module.model.eval()
        self.details = {
            "checkpoint": name,
            "checkpoint_bytes": os.path.getsize(path),
            "audio_model": amodel,
            "fusion": fusion,
            "text_model": "roberta-base",
            "weights_only": weights_only,
            "device": self.device,
        }
        torch.set_grad_enabled(False)

    def audio_embeddings(self, audio: Any) -> Any:
        import torch

        if len(audio) > MAX_SAMPLES:
            audio = fit_length(audio, MAX_SAMPLES)
        with torch.inference_mode():
            out = self.module.get_audio_embedding_from_data(audio.reshape(1, -1), use_tensor=False)
        return torch.from_numpy(out)

    def text_embeddings(self, texts: List[str]) -> Any:
        import torch

        with torch.inference_mode():
            out = self.module.get_text_embedding(list(texts), use_tensor=True)
        return out.detach()

    def logit_scale(self) -> float:
        return float(self.module.model.logit_scale_a.exp().item())
