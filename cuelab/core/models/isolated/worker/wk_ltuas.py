"""LTU-AS (YuanGongND/ltu, ``src/ltu_as``): the release's inference steps, from the checkout.

As the repository's ``inference_gradio.py`` does:

* the checkout's vendored forks come first on ``sys.path``: transformers 4.28
  (``hf-dev/transformers-main/src``, whose LLaMA takes ``audio_input``), peft
  (``peft-main/src``) and the audio-encoder-only Whisper (``whisper/``), then
  ``src/ltu_as`` itself for ``utils.prompter``;
* ``LlamaForCausalLM`` / ``LlamaTokenizer`` from the LLaMA (Vicuna) base, a LoRA
  of r=8, alpha=16 on ``q_proj``/``v_proj``, and the LTU-AS checkpoint loaded
  over it (``strict=False``); pad/bos/eos ids 0/1/2 as the release sets them;
* the audio: Whisper large-v1's encoder, every layer (``transcribe_audio``), the
  time axis averaged in blocks of 20 frames, the first layer dropped; the spoken
  text: Whisper-AT large-v2's ``transcribe`` with the release's "thanks for
  watching" clean-up; both go into the ``alpaca_short`` prompt;
* the answer is the text after ``### Response:``.

LOCATION is a folder holding the base model (``vicuna_ltuas/``, or the folder
itself in HF layout), ``ltuas_long_noqa_a6.bin``, ``large-v1.pt`` and
``large-v2.pt`` (the release's ``pretrained_mdls``). The checkpoints are
pickles (``--allow-pickle``). The release samples (temperature 0.1, top-p
0.95, top-k 500, repetition penalty 1.1); CueLab decodes greedily without a
penalty unless a seeded draw is asked, and names the release's settings in
the details.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Dict, List, Optional

from wk_common import GenerativeHandler, not_allowed, pick_device

RELEASE_DECODING = {"temperature": 0.1, "top_p": 0.95, "top_k": 500, "repetition_penalty": 1.1}
CHECKPOINT = "ltuas_long_noqa_a6.bin"
_WATCHING = re.compile(r"thank(?:s| you) for watching[.!]?", re.IGNORECASE)


def ltu_source(paths: Optional[List[str]] = None) -> str:
    """``src/ltu_as`` of the checkout on ``sys.path`` (the environment's ``.pth`` puts it there)."""
    for entry in paths if paths is not None else sys.path:
        candidate = os.path.join(entry, "src", "ltu_as")
        if os.path.isdir(os.path.join(candidate, "utils")):
            return candidate
    raise FileNotFoundError("the LTU checkout (src/ltu_as) is not on sys.path; rebuild the env")


def vendored_paths(src: str) -> List[str]:
    """The release's forks, in the order they must shadow installed packages."""
    return [
        os.path.join(src, "hf-dev", "transformers-main", "src"),
        os.path.join(src, "peft-main", "src"),
        os.path.join(src, "whisper"),
        src,
    ]


def clean_spoken_text(text: str) -> str:
    """Whisper's "thanks for watching" hallucination removed, as the release does."""
    return _WATCHING.sub("", text.lstrip())


def block_mean(features: Any, block: int = 20) -> Any:
    """Average the time axis (axis 1) of ``(layers, time, dim)`` in blocks, zero-padded at the end.

    ``skimage.measure.block_reduce(x, (1, block, 1), np.mean)`` as the release
    calls it (its padding value is 0).
    """
    import numpy as np

    x = np.asarray(features, dtype=np.float32)
    pad = (-x.shape[1]) % block
    if pad:
        x = np.concatenate([x, np.zeros((x.shape[0], pad, x.shape[2]), np.float32)], axis=1)
    return x.reshape(x.shape[0], -1, block, x.shape[2]).mean(axis=2)


class LtuAsHandler(GenerativeHandler):
    """One LTU-AS checkpoint with its Whisper models."""

    sample_rate = 16000

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        if not os.path.isdir(location):
            raise FileNotFoundError("%s is not an LTU-AS folder" % location)
        files = {
            name: os.path.join(location, name)
            for name in (CHECKPOINT, "large-v1.pt", "large-v2.pt")
        }
        missing = [n for n, p in files.items() if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError("%s: missing %s" % (location, ", ".join(missing)))
        if not options.get("allow_pickle"):
            raise not_allowed(
                "%s and the Whisper .pt files are pickles" % CHECKPOINT, "allow-pickle"
            )
        base = os.path.join(location, "vicuna_ltuas")
        if not os.path.isfile(os.path.join(base, "config.json")):
            base = location
        src = ltu_source()
        for path in reversed(vendored_paths(src)):
            if path not in sys.path:
                sys.path.insert(0, path)
        import torch
        import whisper_at
        from peft import LoraConfig, get_peft_model
        from transformers import LlamaForCausalLM, LlamaTokenizer
        from utils.prompter import Prompter
        from whisper.model import ModelDimensions, Whisper

        self.torch = torch
        self.device = pick_device(options)
        half = self.device == "cuda"
        self.prompter = Prompter("alpaca_short")
        self.tokenizer = LlamaTokenizer.from_pretrained(base)
        kwargs = {"torch_dtype": torch.float16} if half else {}  # type: Dict[str, Any]
        model = LlamaForCausalLM.from_pretrained(base, **kwargs)
        for name, param in model.named_parameters():  # the release keeps the audio LayerNorms fp32
            if "audio_encoder" in name and "ln" in name and param.dtype == torch.float16:
                param.data = param.data.float()
        lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                          lora_dropout=0.05, bias="none", task_type="CAUSAL_LM")  # fmt: skip
        model = get_peft_model(model, lora)  # type: ignore[assignment]
        state = torch.load(files[CHECKPOINT], map_location="cpu")
        _missing, unexpected = model.load_state_dict(state, strict=False)
        model.config.pad_token_id = self.tokenizer.pad_token_id = 0
        model.config.bos_token_id = 1
        model.config.eos_token_id = 2
        self.model = model.to(self.device).eval()
        checkpoint = torch.load(files["large-v1.pt"], map_location="cpu")
        feat = Whisper(ModelDimensions(**checkpoint["dims"]))
        feat.load_state_dict(checkpoint["model_state_dict"], strict=False)
        self.feat_model = feat.to(self.device).eval()
        self.text_model = whisper_at.load_model(files["large-v2.pt"], device=self.device)
        self.half = half
        self.details = {
            "folder": os.path.basename(os.path.normpath(location)),
            "base": os.path.basename(os.path.normpath(base)),
            "checkpoint": CHECKPOINT,
            "unexpected_keys": len(unexpected),
            "release_decoding": dict(RELEASE_DECODING),
        }

    def _audio(self, path: str) -> Any:
        """(features, spoken text) of one file, as ``load_audio_trans`` builds them."""
        torch = self.torch
        spoken = clean_spoken_text(str(self.text_model.transcribe(path)["text"]))
        with torch.no_grad():
            _, rep = self.feat_model.transcribe_audio(path)
        feats = torch.permute(rep[0], (2, 0, 1)).detach().cpu().numpy()
        feats = torch.FloatTensor(block_mean(feats)[1:]).unsqueeze(0).to(self.device)
        return (feats.half() if self.half else feats), spoken

    def generate(
        self,
        audio: Any,
        prompt: str,
        max_new_tokens: int,
        sampling: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        from transformers import GenerationConfig

        torch = self.torch
        path = self.audio_file(audio)
        try:
            feats, spoken = self._audio(path)
        finally:
            os.unlink(path)
        full = self.prompter.generate_prompt(prompt, spoken)
        input_ids = self.tokenizer(full, return_tensors="pt")["input_ids"].to(self.device)
        decoding = self.decoding(sampling, max_new_tokens)
        config = GenerationConfig(
            bos_token_id=1, eos_token_id=2, pad_token_id=0, num_return_sequences=1, **decoding
        )
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, audio_input=feats,
                                      generation_config=config, return_dict_in_generate=True,
                                      max_new_tokens=int(max_new_tokens))  # fmt: skip
        new = [int(t) for t in out.sequences[0][input_ids.shape[1] :]]
        ended = bool(new) and new[-1] == 2
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        text = text.partition("### Response:")[2] if "### Response:" in text else text
        return {
            "text": text.strip(),
            "finish_reason": "stop" if ended or len(new) < int(max_new_tokens) else "length",
            "tokens": len(new),
            "prompt": full,
            "decoding": decoding,
        }
