"""A stand-in for the LTU repository's checkout, in its real layout, for the LTU-AS handler.

The release needs a 7B LLaMA, Whisper large-v1/v2 and a GitHub checkout, none
of which exist here. This writes, under a folder, the modules the handler
imports at the paths the release has them (``src/ltu_as/hf-dev/transformers-main/src``,
``src/ltu_as/peft-main/src``, ``src/ltu_as/whisper/whisper``, ``src/ltu_as/utils``)
plus a ``whisper_at`` package, each implementing the calls the handler makes
with small real behaviour: the "encoder" gives one row per 20 ms of the real
audio file (its frame energies), the "LLM" answers with a fixed sentence and
ends with the eos id 2, and every call is logged as a JSON line so the test can
check what the handler passed (prompt, audio features, decoding).
"""

from __future__ import annotations

from pathlib import Path

ANSWER = "A busy cafe with dishes clinking and people talking."
SPOKEN = " Please call Stella. Thanks for watching!"

TRANSFORMERS = """
import json, os
import torch

LOG = os.environ["LTU_STUB_LOG"]


def log(**kw):
    with open(LOG, "a") as f:
        f.write(json.dumps(kw) + "\\n")


class GenerationConfig:
    def __init__(self, **kw):
        self.kw = kw


class LlamaTokenizer:
    pad_token_id = None

    def __init__(self):
        self.vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
        self.words = ["<unk>", "<s>", "</s>"]

    @classmethod
    def from_pretrained(cls, path):
        assert os.path.isfile(os.path.join(path, "config.json")), path
        return cls()

    def ids(self, text):
        out = []
        for w in text.split(" "):
            if w not in self.vocab:
                self.vocab[w] = len(self.words)
                self.words.append(w)
            out.append(self.vocab[w])
        return out

    def __call__(self, text, return_tensors=None):
        log(call="tokenize", text=text)
        return {"input_ids": torch.tensor([[1] + self.ids(text)])}

    def decode(self, ids, skip_special_tokens=False):
        words = [self.words[i] for i in ids if not (skip_special_tokens and i < 3)]
        return " ".join(words)


class _Config:
    pad_token_id = bos_token_id = eos_token_id = None


class LlamaForCausalLM(torch.nn.Module):
    tokenizer = None

    def __init__(self):
        super().__init__()
        self.config = _Config()
        self.audio_encoder_ln = torch.nn.LayerNorm(4)

    @classmethod
    def from_pretrained(cls, path, **kw):
        log(call="from_pretrained", path=os.path.basename(path), kw=sorted(kw))
        return cls()

    def generate(self, input_ids=None, audio_input=None, generation_config=None,
                 return_dict_in_generate=False, max_new_tokens=None):
        log(call="generate", audio_shape=list(audio_input.shape),
            audio_mean=float(audio_input.float().mean()), config=generation_config.kw,
            max_new_tokens=max_new_tokens)
        tok = LlamaTokenizer.current
        answer = tok.ids("### Response: " + os.environ["LTU_STUB_ANSWER"])[:max_new_tokens]
        seq = input_ids[0].tolist() + answer + ([2] if len(answer) < max_new_tokens else [])

        class Out:
            sequences = torch.tensor([seq])

        return Out()


_init = LlamaTokenizer.__init__


def _remember(self):
    _init(self)
    LlamaTokenizer.current = self


LlamaTokenizer.__init__ = _remember
"""

PEFT = """
class LoraConfig:
    def __init__(self, **kw):
        self.kw = kw


class _Peft:
    def __init__(self, model, config):
        self.base = model
        self.config = model.config
        self.lora = config.kw

    def named_parameters(self):
        return self.base.named_parameters()

    def load_state_dict(self, state, strict=True):
        import json, os
        with open(os.environ["LTU_STUB_LOG"], "a") as f:
            f.write(json.dumps({"call": "load_state_dict", "keys": sorted(state),
                                "strict": strict, "lora": self.lora}) + "\\n")
        return [], ["unused.weight"]

    def to(self, device):
        return self

    def eval(self):
        return self

    def generate(self, **kw):
        return self.base.generate(**kw)


def get_peft_model(model, config):
    return _Peft(model, config)
"""

PROMPTER = """
class Prompter:
    def __init__(self, template):
        assert template == "alpaca_short"

    def generate_prompt(self, instruction, input=None):
        return ("Below is an instruction that describes a task, paired with an input that "
                "provides further context. Write a response that appropriately completes the "
                "request.\\n\\n### Instruction:\\n" + instruction + "\\n\\n### Input:\\n"
                + str(input) + "\\n\\n### Response:\\n")
"""

WHISPER_MODEL = """
from dataclasses import dataclass
import numpy as np
import soundfile
import torch


@dataclass
class ModelDimensions:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


class Whisper(torch.nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def transcribe_audio(self, path):
        audio, sr = soundfile.read(path, dtype="float32")
        assert sr == 16000, sr
        audio = np.pad(audio, (0, max(0, 160000 - audio.size)))[:160000]  # 10 s, as the release
        frames = audio.reshape(500, 320)
        energy = torch.tensor((frames ** 2).mean(axis=1))  # one value per encoder frame
        layers = self.dims.n_audio_layer + 1
        rep = energy[None, :, None, None].expand(1, 500, self.dims.n_audio_state, layers).clone()
        rep = rep * torch.arange(1, layers + 1, dtype=rep.dtype)
        return None, rep
"""

WHISPER_AT = """
import os


class _Model:
    def transcribe(self, path):
        assert os.path.isfile(path)
        return {"text": os.environ["LTU_STUB_SPOKEN"]}


def load_model(name, device=None):
    assert os.path.isfile(name), name
    return _Model()
"""


def write_checkout(root: Path) -> tuple[Path, Path]:
    """The fake checkout (``root/ltu``) and a ``site`` folder with ``whisper_at``."""
    src = root / "ltu" / "src" / "ltu_as"
    files = {
        src / "hf-dev" / "transformers-main" / "src" / "transformers" / "__init__.py": TRANSFORMERS,
        src / "peft-main" / "src" / "peft" / "__init__.py": PEFT,
        src / "utils" / "__init__.py": "",
        src / "utils" / "prompter.py": PROMPTER,
        src / "whisper" / "whisper" / "__init__.py": "",
        src / "whisper" / "whisper" / "model.py": WHISPER_MODEL,
        root / "site" / "whisper_at" / "__init__.py": WHISPER_AT,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")
    return root / "ltu", root / "site"


def write_location(folder: Path) -> Path:
    """An LTU-AS LOCATION: vicuna_ltuas/, the checkpoint and both Whisper files (tiny pickles)."""
    import torch

    (folder / "vicuna_ltuas").mkdir(parents=True)
    (folder / "vicuna_ltuas" / "config.json").write_text("{}", encoding="utf-8")
    torch.save({"lora.weight": torch.zeros(2)}, folder / "ltuas_long_noqa_a6.bin")
    dims = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 8, "n_audio_head": 2,
            "n_audio_layer": 4, "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 8,
            "n_text_head": 2, "n_text_layer": 2}  # fmt: skip
    torch.save({"dims": dims, "model_state_dict": {}}, folder / "large-v1.pt")
    torch.save({"dims": dims}, folder / "large-v2.pt")
    return folder
