"""Pengi (microsoft/Pengi): the repository's ``wrapper.PengiWrapper`` from the checkout.

``PengiWrapper(config)`` looks for its weights inside the checkout's
``configs/``; here the same steps run with LOCATION's ``base.pth`` /
``base_no_text_enc.pth`` and the matching ``.yml`` (beside it, else the
checkout's ``configs/``): ``get_model_and_tokenizer`` builds ``PENGI`` and
loads the pickled ``{"model": ...}``; ``generate`` decodes with the release's
beam search, with a beam of 1 (greedy) unless asked otherwise. Audio goes in as
a 44.1 kHz file, the model's rate. The recipe keeps Pengi's own pins
(torch 2.0, torchaudio 2.0, transformers 4.30): its wrapper reads audio with
torchaudio.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, Optional

from wk_common import GenerativeHandler, not_allowed


class PengiHandler(GenerativeHandler):
    """One Pengi checkpoint."""

    sample_rate = 44100

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        import wrapper  # the repository's own module

        path = location
        if os.path.isdir(location):
            names = ("base.pth", "base_no_text_enc.pth")
            found = [
                os.path.join(location, n)
                for n in names
                if os.path.isfile(os.path.join(location, n))
            ]
            if not found:
                raise FileNotFoundError("no base.pth or base_no_text_enc.pth in %s" % location)
            path = found[0]
        if not options.get("allow_pickle"):
            raise not_allowed("%s is a pickle" % os.path.basename(path), "allow-pickle")
        stem = os.path.splitext(os.path.basename(path))[0]
        config = os.path.join(os.path.dirname(os.path.abspath(path)), stem + ".yml")
        if not os.path.isfile(config):
            config = os.path.join(
                os.path.dirname(os.path.abspath(wrapper.__file__)), "configs", stem + ".yml"
            )
        pengi = wrapper.PengiWrapper.__new__(wrapper.PengiWrapper)
        pengi.file_path = os.path.realpath(wrapper.__file__)
        pengi.model_path = path
        pengi.config_path = config
        pengi.use_cuda = str(options.get("device")) in ("cuda", "auto")
        pengi.np_str_obj_array_pattern = re.compile(r"[SaUO]")
        pengi.default_collate_err_msg_format = "default_collate: unsupported type {}"
        pengi.model, pengi.enc_tokenizer, pengi.dec_tokenizer, pengi.args = (
            pengi.get_model_and_tokenizer(config_path=config)
        )
        pengi.model.eval()
        self.pengi = pengi
        self.details = {"checkpoint": os.path.basename(path), "config": os.path.basename(config)}

    def generate(
        self,
        audio: Any,
        prompt: str,
        max_new_tokens: int,
        sampling: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        if sampling:
            raise ValueError("Pengi decodes with beam search; it has no seeded sampling")
        path = self.audio_file(audio)
        try:
            preds = self.pengi.generate(
                audio_paths=[path],
                text_prompts=[prompt],
                add_texts=[""],
                max_len=int(max_new_tokens),
                beam_size=1,
                temperature=1.0,
                stop_token=" <|endoftext|>",
            )
        finally:
            os.unlink(path)
        texts = preds[0][0]
        text = texts[0] if texts else ""
        text = text.replace("<|endoftext|>", "").strip()
        decoding = {"decoding": "beam", "beam_size": 1, "max_len": int(max_new_tokens)}
        return {"text": text, "finish_reason": "", "prompt": prompt, "decoding": decoding}
