"""Cosines of one clip against texts, straight through the package (no worker), in its env.

    python direct_scores.py ms-clap|laion-clap WEIGHTS_DIR TEXT... < float32 samples

MS-CLAP follows ``CLAPWrapper`` step by step (it cannot be imported: torchaudio);
LAION-CLAP uses the package's own ``CLAP_Module.load_ckpt`` and embedding calls.
Prints one JSON list.
"""

import json
import math
import os
import sys

import numpy as np
import torch


def msclap_cosines(weights, texts, audio):
    import importlib.util
    import types

    import yaml
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("msclap")
    pkg = types.ModuleType("msclap")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["msclap"] = pkg
    from msclap.models.clap import CLAP

    with open(os.path.join(pkg.__path__[0], "configs", "config_2023.yml")) as fh:
        args = yaml.load(fh, Loader=yaml.FullLoader)
    clap = CLAP(
        audioenc_name=args["audioenc_name"],
        sample_rate=args["sampling_rate"],
        window_size=args["window_size"],
        hop_size=args["hop_size"],
        mel_bins=args["mel_bins"],
        fmin=args["fmin"],
        fmax=args["fmax"],
        classes_num=args["num_classes"],
        out_emb=args["out_emb"],
        text_model=args["text_model"],
        transformer_embed_dim=args["transformer_embed_dim"],
        d_proj=args["d_proj"],
    )
    state = torch.load(os.path.join(weights, "CLAP_weights_2023.pth"), map_location="cpu")["model"]
    clap.load_state_dict(state, strict=False)
    clap.eval()
    tokenizer = AutoTokenizer.from_pretrained(args["text_model"])
    tokenizer.add_special_tokens({"pad_token": "!"})
    n = args["duration"] * args["sampling_rate"]
    x = torch.from_numpy(audio)
    x = x.repeat(int(np.ceil(n / x.shape[0])))[:n] if n >= x.shape[0] else x[:n]
    with torch.no_grad():
        a = clap.audio_encoder(x.reshape(1, -1))[0]
        toks = [
            tokenizer.encode_plus(
                text=t + " <|endoftext|>",
                add_special_tokens=True,
                max_length=args["text_len"],
                padding="max_length",
                return_tensors="pt",
            )
            for t in texts
        ]
        batch = {
            k: torch.stack([t[k].reshape(-1) for t in toks])
            for k in ("input_ids", "attention_mask")
        }
        t = clap.caption_encoder(batch)
    a = a / a.norm(dim=-1, keepdim=True)
    t = t / t.norm(dim=-1, keepdim=True)
    return (a @ t.T)[0].tolist()


def laion_cosines(weights, texts, audio):
    sys.path.insert(0, os.environ["CUELAB_WORKER_DIR"])
    from wk_laionclap import prepare_torchvision

    prepare_torchvision()
    import laion_clap

    model = laion_clap.CLAP_Module(enable_fusion=False, device="cpu")
    model.load_ckpt(os.path.join(weights, "630k-audioset-best.pt"), verbose=False)
    a = model.get_audio_embedding_from_data(audio.reshape(1, -1))[0]
    t = model.get_text_embedding(list(texts))
    return [float(np.dot(a, row) / (np.linalg.norm(a) * np.linalg.norm(row))) for row in t]


def main():
    family, weights, texts = sys.argv[1], sys.argv[2], sys.argv[3:]
    audio = np.frombuffer(sys.stdin.buffer.read(), dtype="<f4").astype(np.float32)
    out = (msclap_cosines if family == "ms-clap" else laion_cosines)(weights, texts, audio)
    assert all(math.isfinite(x) for x in out)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
