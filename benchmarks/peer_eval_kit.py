"""CueLab's 12-condition protocol against the evaluation kits' way, on the same weights.

The kits (and most papers' scripts) ask a model one prompt at a time: one full
``generate`` per prompt (audio encoder, the whole prompt, then greedy decoding),
then parse the answer. CueLab scores every condition of a clip with one
``score_labels`` call: the audio + instruction prefix is encoded once, each
token line and label runs as a suffix on its cache, and vocabulary logits are
computed only where they are read.

Both run on a Qwen2-Audio folder laid out like the release, with the released
151,643-word Qwen2 vocabulary (``tiny.build_qwen2_audio(real_vocab=True)``,
random weights). Per clip the two ways run as a pair, in alternating order
(kit first on even repeats, CueLab first on odd ones); the speed-up of each pair
is kit time / CueLab time, and the script prints their median and range per
clip length. The probability check compares CueLab's label probabilities with
a plain transformers recomputation (one full forward per prompt x label, every
position projected).

``--before`` also times CueLab with the vocabulary projected at every position
(as before logits_to_keep), in the same pairs.

    .venv/bin/python benchmarks/peer_eval_kit.py [--seconds 10,30] [--clips 3]
        [--repeats 2] [--layers 2] [--hidden 64] [--max-new-tokens 4] [--before] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# Eleven token lines + audio-only: the 12 prompts of one clip.
TOKENS = [
    "ENERGY=HIGH PITCH=LOW BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=LOW PITCH=HIGH BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=MID PITCH=MID BRIGHTNESS=HIGH DYNAMICS=DYNAMIC FORMANTS=LOW VOICE_QUALITY=BREATHY",
    "ENERGY=HIGH PITCH=HIGH BRIGHTNESS=LOW DYNAMICS=STATIC FORMANTS=HIGH VOICE_QUALITY=PRESSED",
    "ENERGY=LOW PITCH=LOW BRIGHTNESS=LOW DYNAMICS=DYNAMIC FORMANTS=MID VOICE_QUALITY=CREAKY",
    "ENERGY=MID PITCH=LOW BRIGHTNESS=HIGH DYNAMICS=STATIC FORMANTS=LOW VOICE_QUALITY=MODAL",
    "ENERGY=HIGH PITCH=MID BRIGHTNESS=MID DYNAMICS=DYNAMIC FORMANTS=HIGH VOICE_QUALITY=MODAL",
    "ENERGY=LOW PITCH=MID BRIGHTNESS=LOW DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=BREATHY",
    "PITCH=LOW BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=HIGH BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
    "ENERGY=MID PITCH=HIGH BRIGHTNESS=LOW DYNAMICS=DYNAMIC FORMANTS=HIGH VOICE_QUALITY=TENSE",
]
LABELS = ("angry", "happy", "neutral", "sad")


def _clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 40 * rng.random()
    tone = np.sin(2 * np.pi * f0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def kit_way(adapter: Any, clip: Any, task: Any, texts: list[str | None], new: int) -> list[str]:
    """One full generate per prompt, then parse: transformers' own generate, greedy."""
    import torch
    from transformers import GenerationConfig

    from cuelab.core.models.scoring import parse_answer

    config = GenerationConfig(**adapter.decoding(new, None))
    answers = []
    for text in texts:
        prompt = adapter.chat_prompt(task.render(LABELS, text))
        inputs = adapter._to_model(adapter.model_inputs(prompt, clip))
        with torch.inference_mode():
            out = adapter.model.generate(**inputs, generation_config=config)
        answer = adapter.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :],
                                          skip_special_tokens=True)  # fmt: skip
        answers.append(parse_answer(answer, LABELS) or "")
    return answers


def reference_probs(adapter: Any, clip: Any, task: Any, texts: list[str | None]) -> np.ndarray:
    """Label probabilities from a plain full forward per prompt x label (every position)."""
    import torch

    from cuelab.core.models.scoring import label_rows, probabilities

    prompts = [adapter.chat_prompt(task.render(LABELS, t)) for t in texts]
    rows = label_rows(adapter.tokenize, prompts, LABELS, adapter.end_of_turn)
    sums = np.zeros((len(texts), len(LABELS)))
    for row in rows:
        inputs = adapter._to_model(adapter.model_inputs(
            prompts[row.variant] + LABELS[row.label] + adapter.end_of_turn, clip))  # fmt: skip
        with torch.inference_mode():
            logits = adapter.model(**inputs).logits[0].float()
        ids = inputs["input_ids"][0]
        start = row.span_start + len(ids) - len(row.ids)
        logp = torch.log_softmax(logits, dim=-1)
        sums[row.variant, row.label] = float(
            logp[torch.arange(start - 1, len(ids) - 1), ids[start:]].sum()
        )
    return np.array([probabilities(list(r)) for r in sums])


def main() -> int:
    """Build the weights, time both ways in alternating pairs, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", default="10,30", help="clip lengths, comma-separated")
    parser.add_argument("--clips", type=int, default=3, help="clips per length")
    parser.add_argument("--repeats", type=int, default=2, help="pairs per clip")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=4,
                        help="kit answer length (a label and the end of turn)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="default: CueLab's policy")
    parser.add_argument("--before", action="store_true", help="also time every-position logits")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    from cuelab.core.models import tiny
    from cuelab.core.models.base import Clip, LoadOptions
    from cuelab.core.models.registry import load_model
    from cuelab.core.tasks.prompts import load_task
    from cuelab.core.threads import apply_threads, choose_threads

    choice = choose_threads(args.threads)
    apply_threads(choice)
    task = load_task("ser", LABELS)
    texts: list[str | None] = [None, *TOKENS]
    result: dict[str, Any] = {
        "threads": choice.to_dict(), "layers": args.layers, "hidden": args.hidden,
        "prompts_per_clip": len(texts), "max_new_tokens": args.max_new_tokens, "lengths": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny.build_qwen2_audio(Path(tmp) / "qwen2-audio", layers=args.layers,
                                        hidden=args.hidden, real_vocab=True)  # fmt: skip
        adapter = load_model(f"qwen2-audio:{folder}", LoadOptions(quant="fp32", device="cpu"))
        result["vocabulary"] = int(adapter.model.config.get_text_config().vocab_size)
        for seconds in (float(s) for s in args.seconds.split(",")):
            clips = [Clip(_clip(seconds, k), 16000, utt_id=f"c{k}") for k in range(args.clips)]
            ways = {"kit": [], "cuelab": [], "cuelab_before": []}
            ratios, before_ratios, diffs = [], [], []
            # warm-up (first-call allocations), not timed
            adapter.score_labels(clips[0], task, LABELS, texts[:2])
            kit_way(adapter, clips[0], task, texts[:1], args.max_new_tokens)
            for k, clip in enumerate(clips):
                diffs.append(_check(adapter, clip, task, texts))
                for rep in range(args.repeats):
                    order = ["kit", "cuelab"] if (k + rep) % 2 == 0 else ["cuelab", "kit"]
                    if args.before:
                        order.append("cuelab_before")
                    took = {}
                    for way in order:
                        adapter.prefixes.clear()  # every CueLab call encodes its clip anew
                        adapter.full_projection = way == "cuelab_before"
                        start = time.perf_counter()
                        if way == "kit":
                            kit_way(adapter, clip, task, texts, args.max_new_tokens)
                        else:
                            adapter.score_labels(clip, task, LABELS, texts)
                        took[way] = time.perf_counter() - start
                    adapter.full_projection = False
                    for way, t in took.items():
                        ways[way].append(t)
                    ratios.append(took["kit"] / took["cuelab"])
                    if args.before:
                        before_ratios.append(took["cuelab_before"] / took["cuelab"])
            entry = {
                "pairs": len(ratios),
                "kit_s_median": statistics.median(ways["kit"]),
                "cuelab_s_median": statistics.median(ways["cuelab"]),
                "speedup_median": statistics.median(ratios),
                "speedup_min": min(ratios),
                "speedup_max": max(ratios),
                "max_abs_prob_diff": max(diffs),
            }
            if args.before:
                entry["logits_kept_gain_median"] = statistics.median(before_ratios)
                entry["logits_kept_gain_range"] = [min(before_ratios), max(before_ratios)]
            result["lengths"][f"{seconds:g}s"] = entry
            if args.json:  # one line per length as it finishes (long runs on busy machines)
                print(json.dumps({"length": f"{seconds:g}s", **entry}), flush=True)
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        _print(result)
    return 0


def _check(adapter: Any, clip: Any, task: Any, texts: list[str | None]) -> float:
    adapter.prefixes.clear()
    preds = adapter.score_labels(clip, task, LABELS, texts)
    mine = np.array([[p.probs[lab] for lab in LABELS] for p in preds])
    return float(np.abs(mine - reference_probs(adapter, clip, task, texts)).max())


def _print(result: dict[str, Any]) -> None:
    print(f"vocabulary {result['vocabulary']}, {result['layers']} layers, hidden "
          f"{result['hidden']}, {result['prompts_per_clip']} prompts per clip, kit answers "
          f"{result['max_new_tokens']} tokens, threads {result['threads']}")  # fmt: skip
    for length, e in result["lengths"].items():
        line = (f"{length}: kit {e['kit_s_median']:.3f} s, CueLab {e['cuelab_s_median']:.3f} s "
                f"per clip; speed-up median {e['speedup_median']:.1f}x "
                f"(range {e['speedup_min']:.1f}-{e['speedup_max']:.1f}, {e['pairs']} pairs); "
                f"max |p - p_ref| {e['max_abs_prob_diff']:.1e}")  # fmt: skip
        if "logits_kept_gain_median" in e:
            lo, hi = e["logits_kept_gain_range"]
            line += f"; logits kept {e['logits_kept_gain_median']:.2f}x ({lo:.2f}-{hi:.2f})"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
