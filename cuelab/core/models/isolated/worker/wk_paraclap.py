"""ParaCLAP (KeiKinn/ParaCLAP): its ``models_xin.CLAP`` from the checkout on ``sys.path``.

As the repository's ``eval.py`` does: a wav2vec2 speech branch
(``audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim``) and a BERT text
branch (``bert-base-uncased``), both from the local Hugging Face cache,
``embedding_dim=768``; the checkpoint (``best.pth.tar``) is a plain state dict;
audio is raw 16 kHz samples, text is tokenised with padding, CLS pooled.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

from wk_common import (
    ContrastiveHandler,
    find_checkpoint,
    load_checkpoint,
    load_tokenizer,
    pick_device,
)

AUDIO_MODEL = "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"
TEXT_MODEL = "bert-base-uncased"


class ParaClapHandler(ContrastiveHandler):
    """One ParaCLAP checkpoint."""

    sample_rate = 16000

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        import torch
        from models_xin import CLAP  # the repository's own model code

        path = find_checkpoint(location, ("best.pth.tar",), (".tar", ".pth", ".pt"))
        audio_model = str(options.get("audio_model") or AUDIO_MODEL)
        self.model = CLAP(speech_name=audio_model, text_name=TEXT_MODEL, embedding_dim=768)
        state, weights_only = load_checkpoint(path, bool(options.get("allow_pickle")))
        self.model.load_state_dict(state)
        self.device = pick_device(options)
        self.model.eval().to(self.device)
        self.tokenizer = load_tokenizer(TEXT_MODEL, "paraclap")
        self.details = {
            "checkpoint": os.path.basename(path),
            "checkpoint_bytes": os.path.getsize(path),
            "audio_model": audio_model,
            "text_model": TEXT_MODEL,
            "weights_only": weights_only,
            "device": self.device,
        }
        torch.set_grad_enabled(False)

    def audio_embeddings(self, audio: Any) -> Any:
        import torch

        x = torch.from_numpy(audio).unsqueeze(0).to(self.device)
        with torch.inference_mode():
            return self.model.audio_projection(self.model.audio_branch(x))

    def text_embeddings(self, texts: List[str]) -> Any:
        import torch

        tokens = self.tokenizer.batch_encode_plus(
            list(texts), padding=True, truncation=True, return_tensors="pt"
        )
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        with torch.inference_mode():
            return self.model.text_projection(self.model.text_branch(tokens))

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp().item())
