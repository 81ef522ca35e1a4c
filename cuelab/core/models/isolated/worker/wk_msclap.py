"""MS-CLAP (``msclap`` from PyPI): the package's own model classes and configs.

What the package's ``CLAPWrapper`` does, minus its file loading (torchaudio,
which has no build for torch 2.13): the config ``configs/config_<version>.yml``
shipped in the package builds ``msclap.models.clap.CLAP``; the released
``CLAP_weights_<version>.pth`` holds ``{"model": state_dict}``; text is
tokenised as the wrapper does (GPT-2: `` <|endoftext|>`` appended, ``!`` as
padding, ``text_len`` tokens). Audio arrives at the config's rate (44.1 kHz)
and is repeated or cut to the config's duration (the wrapper crops at random;
here the centre).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any, Dict, List

from wk_common import (
    ContrastiveHandler,
    find_checkpoint,
    fit_length,
    load_checkpoint,
    load_tokenizer,
    pick_device,
)

WEIGHTS = ("CLAP_weights_2023.pth", "CLAP_weights_2022.pth")


def import_models() -> Any:
    """``msclap.models.clap`` without running ``msclap/__init__`` (it imports torchaudio)."""
    if "msclap" not in sys.modules:
        spec = importlib.util.find_spec("msclap")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("msclap is not installed in this environment")
        pkg = types.ModuleType("msclap")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["msclap"] = pkg
    import msclap.models.clap as clap_module

    return clap_module


class MsClapHandler(ContrastiveHandler):
    """One MS-CLAP checkpoint (2022 or 2023)."""

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        import torch
        import yaml

        path = find_checkpoint(location, WEIGHTS, (".pth", ".pt"))
        version = "2022" if "2022" in os.path.basename(path) else "2023"
        clap_module = import_models()
        package_dir = next(iter(sys.modules["msclap"].__path__))
        with open(os.path.join(package_dir, "configs", "config_%s.yml" % version)) as fh:
            self.config = yaml.safe_load(fh)
        c = self.config
        self.model = clap_module.CLAP(
            audioenc_name=c["audioenc_name"],
            sample_rate=c["sampling_rate"],
            window_size=c["window_size"],
            hop_size=c["hop_size"],
            mel_bins=c["mel_bins"],
            fmin=c["fmin"],
            fmax=c["fmax"],
            classes_num=c["num_classes"],
            out_emb=c["out_emb"],
            text_model=c["text_model"],
            transformer_embed_dim=c["transformer_embed_dim"],
            d_proj=c["d_proj"],
        )
        checkpoint, weights_only = load_checkpoint(path, bool(options.get("allow_pickle")))
        if not isinstance(checkpoint, dict) or "model" not in checkpoint:
            raise ValueError("%s is not an MS-CLAP release (no 'model' entry)" % path)
        result = self.model.load_state_dict(checkpoint["model"], strict=False)
        # strict=False as the wrapper loads; but a file that misses the audio side is not MS-CLAP
        lost = [k for k in result.missing_keys if not k.startswith("caption_encoder.base.")]
        if lost:
            raise ValueError("%s lacks %d MS-CLAP weights, e.g. %s" % (path, len(lost), lost[0]))
        self.device = pick_device(options)
        self.model.eval().to(self.device)
        text_model = c["text_model"]
        self.tokenizer = load_tokenizer(text_model, "ms-clap")
        if "gpt" in text_model:
            self.tokenizer.add_special_tokens({"pad_token": "!"})
            self.token_keys = ["input_ids", "attention_mask"]
        elif "bert" in text_model and "roberta" not in text_model:
            self.token_keys = ["input_ids", "token_type_ids", "attention_mask"]
        else:
            self.token_keys = ["input_ids", "attention_mask"]
        self.sample_rate = int(c["sampling_rate"])
        self.length = int(c["duration"]) * self.sample_rate
        self.details = {
            "checkpoint": os.path.basename(path),
            "checkpoint_bytes": os.path.getsize(path),
            "version": version,
            "text_model": text_model,
            "duration_s": int(c["duration"]),
            "weights_only": weights_only,
            "device": self.device,
            "unloaded_text_weights": len(result.missing_keys) - len(lost),
        }
        torch.set_grad_enabled(False)

    def audio_embeddings(self, audio: Any) -> Any:
        import torch

        clip = torch.from_numpy(fit_length(audio, self.length)).reshape(1, -1).to(self.device)
        with torch.inference_mode():
            return self.model.audio_encoder(clip)[0]

    def text_embeddings(self, texts: List[str]) -> Any:
        import torch

        batch = {k: [] for k in self.token_keys}  # type: Dict[str, list]
        for text in texts:
            if "gpt" in self.config["text_model"]:
                text = text + " <|endoftext|>"
            tok = self.tokenizer.encode_plus(
                text=text,
                add_special_tokens=True,
                max_length=self.config["text_len"],
                padding="max_length",
                truncation=True,
                return_tensors="pt",
            )
            for key in self.token_keys:
                batch[key].append(tok[key].reshape(-1))
        inputs = {k: torch.stack(v).to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            return self.model.caption_encoder(inputs)

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp().item())
