"""Kimi-Audio (MoonshotAI/Kimi-Audio): ``kimia_infer.api.kimia.KimiAudio`` from the checkout.

As the repository's README does: ``KimiAudio(model_path, load_detokenizer=False)``
(text output only, so no detokenizer), messages of a text instruction then the
audio file, ``generate(..., output_type="text")``. Greedy: text temperature 0
(the release's own sampler); a seeded draw sets the text temperature and seeds
torch. The release moves its tensors to ``torch.cuda.current_device()``, so it
needs a CUDA GPU; its model code is remote code (``--trust-remote-code``).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from wk_common import GenerativeHandler, not_allowed


class KimiAudioHandler(GenerativeHandler):
    """Kimi-Audio-7B(-Instruct) from a local folder."""

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        import torch

        if not options.get("trust_remote_code"):
            raise not_allowed("Kimi-Audio runs the release's own code", "trust-remote-code")
        if not torch.cuda.is_available():
            raise RuntimeError("Kimi-Audio's inference code runs on a CUDA GPU only")
        if not os.path.isdir(location):
            raise FileNotFoundError("%s is not a Kimi-Audio folder" % location)
        from kimia_infer.api.kimia import KimiAudio

        self.model = KimiAudio(model_path=location, load_detokenizer=False)
        self.details = {"folder": os.path.basename(os.path.normpath(location))}

    def generate(
        self,
        audio: Any,
        prompt: str,
        max_new_tokens: int,
        sampling: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        import torch

        path = self.audio_file(audio)
        try:
            messages = [
                {"role": "user", "message_type": "text", "content": prompt},
                {"role": "user", "message_type": "audio", "content": path},
            ]
            params = {"text_temperature": 0.0, "text_top_k": 5}
            if sampling:
                torch.manual_seed(int(sampling.get("seed", 0)))
                params = {"text_temperature": float(sampling["temperature"]), "text_top_k": 5}
            _, text = self.model.generate(
                messages, output_type="text", max_new_tokens=int(max_new_tokens), **params
            )
        finally:
            os.unlink(path)
        return {"text": text, "finish_reason": "", "prompt": prompt, "decoding": params}
