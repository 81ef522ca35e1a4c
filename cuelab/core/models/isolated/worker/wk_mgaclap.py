"""MGA-CLAP (Ming-er/MGA-CLAP): its ``models.ase_model.ASE`` from the checkout on ``sys.path``.

As the repository's ``example.py`` does: the config
``settings/inference_example.yaml`` (or a ``.yaml`` beside the checkpoint)
builds ``ASE``; the checkpoint holds ``{"model": state_dict}`` (loaded strictly);
clip and sentence embeddings are the modality-shared codebook's aggregation
(``model.msc``) of frame and word embeddings; audio at the config's 32 kHz.
Its Sparsemax puts a tensor on ``cuda`` by default; the handler passes the
model's device instead, so the same code runs on a CPU.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Dict, List

from wk_common import ContrastiveHandler, find_checkpoint, fit_length, load_checkpoint, pick_device


def find_config(checkpoint: str) -> str:
    folder = os.path.dirname(os.path.abspath(checkpoint))
    beside = sorted(f for f in os.listdir(folder) if f.endswith((".yaml", ".yml")))
    if beside:
        return os.path.join(folder, beside[0])
    import models  # the checkout's package: its settings folder is a sibling

    root = os.path.dirname(os.path.dirname(os.path.abspath(models.__file__)))
    return os.path.join(root, "settings", "inference_example.yaml")


class MgaClapHandler(ContrastiveHandler):
    """One MGA-CLAP checkpoint."""

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        import torch
        import yaml
        from models.ase_model import ASE  # the repository's own model code

        path = find_checkpoint(location, ("model.pt",), (".pt", ".pth"))
        config_path = find_config(path)
        with open(config_path) as fh:
            config = yaml.safe_load(fh)
        self.device = pick_device(options)
        config["device"] = self.device
        self.model = ASE(config)
        checkpoint, weights_only = load_checkpoint(path, bool(options.get("allow_pickle")))
        self.model.load_state_dict(checkpoint["model"], strict=True)
        self.model.eval().to(self.device)
        sparsemax = self.model.msc.attn_activation
        sparsemax.forward = functools.partial(sparsemax.forward, device=self.device)
        self.sample_rate = int(config["audio_args"]["sr"])
        self.length = int(config["audio_args"]["max_length"]) * self.sample_rate
        self.details = {
            "checkpoint": os.path.basename(path),
            "checkpoint_bytes": os.path.getsize(path),
            "config": os.path.basename(config_path),
            "weights_only": weights_only,
            "device": self.device,
        }
        self.temp = float(self.model.temp.item())
        torch.set_grad_enabled(False)

    def audio_embeddings(self, audio: Any) -> Any:
        import torch

        if len(audio) > self.length:
            audio = fit_length(audio, self.length)
        x = torch.from_numpy(audio).unsqueeze(0).to(self.device)
        with torch.inference_mode():
            _, frames = self.model.encode_audio(x)
            return self.model.msc(frames, self.model.codebook)

    def text_embeddings(self, texts: List[str]) -> Any:
        import torch

        with torch.inference_mode():
            _, words, mask = self.model.encode_text(list(texts))
            return self.model.msc(words, self.model.codebook, mask)

    def logit_scale(self) -> float:
        return 1.0 / self.temp
