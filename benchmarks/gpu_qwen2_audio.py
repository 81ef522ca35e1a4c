"""Load memory and per-edit latency of a real-size Qwen2-Audio-7B on a GPU.

Builds the Qwen2-Audio-7B-Instruct configuration (Whisper-large encoder,
32-layer 4096-wide Qwen language model, 156,032-entry vocabulary) with random
weights, saves it as safetensors, loads it back through CueLab's own
``load_model`` path (offline, bitsandbytes skip lists), and times one token
edit on a 10 s clip:

* ``edit_cached_s``: the window's case: the clip's prefix is already in the
  LRU, one new token text is scored (suffix only);
* ``edit_full_s``: the same edit with prefix reuse off (full passes);
* ``first_clip_s``: a new clip (prefix encoded, then the suffix).

Random weights give real memory and latency, not real predictions.

    python benchmarks/gpu_qwen2_audio.py --quant nf4 [--json]     # on a GPU
    python benchmarks/gpu_qwen2_audio.py --tiny --json            # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

EDITS = [
    "ENERGY=HIGH PITCH=LOW BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=VERY_HIGH PITCH=LOW BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=VERY_HIGH PITCH=HIGH BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
]

# Qwen2-Audio-7B-Instruct's published configuration (sizes only).
REAL_TEXT = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 8192,
    "rope_theta": 10000.0,
    "vocab_size": 156032,
}
REAL_AUDIO = {
    "d_model": 1280,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "num_mel_bins": 128,
    "max_source_positions": 1500,
}


def build_real_size(folder: Path, tiny_sizes: bool) -> Path:
    """Save a random-weight checkpoint (7B sizes unless ``tiny_sizes``) with a working processor."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
    )

    from cuelab.core.models import tiny

    if tiny_sizes:
        return tiny.build_qwen2_audio(folder, layers=2, hidden=64)
    tokenizer = tiny.build_tokenizer(tiny.QWEN_AUDIO_SPECIALS)
    processor = Qwen2AudioProcessor(
        feature_extractor=tiny._feature_extractor(), tokenizer=tokenizer
    )
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", **REAL_AUDIO},
        text_config={"model_type": "qwen2", "tie_word_embeddings": False, **REAL_TEXT},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2AudioForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return folder


def _clip(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    tone = np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(adapter: Any, seconds: float) -> dict[str, float]:
    """Time a first clip, a cached edit and the same edit without prefix reuse."""
    from cuelab.core.models.base import Clip
    from cuelab.core.tasks.prompts import load_task

    task = load_task("ser")
    clip = Clip(_clip(seconds), 16000, "bench")
    adapter.prefix_reuse = True
    adapter.prefixes.clear()
    _sync()
    start = time.perf_counter()
    adapter.score_labels(clip, task, task.labels, [None, EDITS[0]])
    _sync()
    first = time.perf_counter() - start
    start = time.perf_counter()
    cached = adapter.score_labels(clip, task, task.labels, [EDITS[1]])
    _sync()
    edit_cached = time.perf_counter() - start
    adapter.prefix_reuse = False
    start = time.perf_counter()
    full = adapter.score_labels(clip, task, task.labels, [EDITS[1]])
    _sync()
    edit_full = time.perf_counter() - start
    adapter.prefix_reuse = True
    diff = max(abs(cached[0].probs[k] - full[0].probs[k]) for k in task.labels)
    return {
        "first_clip_s": round(first, 4),
        "edit_cached_s": round(edit_cached, 4),
        "edit_full_s": round(edit_full, 4),
        "edit_ratio": round(edit_cached / edit_full, 4),
        "max_prob_diff": float(diff),
    }


def main() -> int:
    """Build, load, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quant", default="nf4", help="nf4 | 8bit | bf16 | fp16 | fp32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (CPU smoke run)")
    parser.add_argument("--folder", help="reuse (or create) the checkpoint here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from cuelab.core.models.base import LoadOptions
    from cuelab.core.models.loading import estimate_bytes, resolve_quant
    from cuelab.core.models.qwen2_audio import Qwen2AudioAdapter
    from cuelab.core.models.registry import load_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp)
        if not (folder / "config.json").is_file():
            start = time.perf_counter()
            build_real_size(folder, args.tiny)
            build_s = time.perf_counter() - start
        else:
            build_s = 0.0
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        adapter = load_model(
            f"qwen2-audio:{folder}", LoadOptions(quant=args.quant, device=args.device)
        )
        _sync()
        load_s = time.perf_counter() - start
        figures: dict[str, Any] = {
            "sizes": "tiny" if args.tiny else "Qwen2-Audio-7B",
            "quant": adapter.describe().get("quant"),
            "device": adapter.describe().get("device"),
            "build_s": round(build_s, 1),
            "load_s": round(load_s, 2),
        }
        import transformers

        config = transformers.AutoConfig.from_pretrained(folder)
        quant = resolve_quant(args.quant, str(figures["device"]))
        model_class = getattr(transformers, Qwen2AudioAdapter.model_class_name)
        needed = estimate_bytes(model_class, config, quant, Qwen2AudioAdapter.skip_modules)
        figures["estimate_gib"] = round(needed / 2**30, 3)
        if torch.cuda.is_available():
            figures["load_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            figures["gpu"] = torch.cuda.get_device_name()
        figures.update(measure(adapter, args.seconds))
        if torch.cuda.is_available():
            figures["run_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>15}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
