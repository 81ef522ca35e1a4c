"""Shared engine of the transformers audio language models (Qwen2-Audio, Omni, AF3).

The prompt is ``system, user: audio + instruction [+ token line], assistant:`` so
every token variant of a clip shares the prefix "audio + instruction". That
prefix is encoded once per clip (its KV cache kept in a small LRU keyed by the
audio and prompt hashes); each variant x label continuation is then scored as
a suffix on top of it, batched when the cache copies fit in memory and
sequentially (cropping the cache back after each row) otherwise. Results
equal a full forward pass; ``prefix_reuse = False`` gives that full pass.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import inspect
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from cuelab.core import errors
from cuelab.core.errors import ModelError
from cuelab.core.models.base import (
    Clip,
    Generation,
    LoadOptions,
    ModelAdapter,
    Prediction,
    Sampling,
    check_label_score,
)
from cuelab.core.models.capabilities import (
    Capability,
    GenerateRequest,
    PromptTemplate,
    ScoreRequest,
)
from cuelab.core.models.loading import Checkpoint, load_pretrained, resolve_location
from cuelab.core.models.scoring import (
    PrefixLRU,
    ScoredRow,
    label_rows,
    probabilities,
    shared_prefix_len,
)
from cuelab.core.models.scoring_modes import (
    check_scoring,
    first_token_predictions,
    generated_predictions,
)
from cuelab.core.models.suffix import (
    PrefixState,
    VariantGroup,
    score_batched,
    score_sequential,
    split_rows,
)

#: End-of-turn tokens of the Qwen-based families; every generation stops at them.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>")
CPU_KV_BUDGET = 1 << 30  # bytes of cache copies + logits per batched chunk on a CPU
GPU_KV_FRACTION = 0.25  # share of free GPU memory for the same


class AudioLMAdapter(ModelAdapter):
    """Base of the transformers ALM adapters; subclasses name the class and the prompt."""

    model_class_name: ClassVar[str] = ""
    skip_modules: ClassVar[tuple[str, ...]] = ()
    system_prompt: ClassVar[str] = "You are a helpful assistant."
    audio_placeholder: ClassVar[str] = ""
    end_of_turn: ClassVar[str] = "<|im_end|>"
    #: The summed log-probability of the label's tokens and the end of turn.
    scoring_method: ClassVar[str] = "continuation"
    provides: ClassVar[frozenset[Capability]] = frozenset({Capability.SCORE, Capability.GENERATE})

    def __init__(
        self, model: Any, processor: Any, checkpoint: Checkpoint, device: str, quant: str
    ) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.checkpoint = checkpoint
        self.device = device
        self.quant = quant
        self.prefix_reuse = True
        self.user_suffix = ""
        self.label_score = "sum"  # or "mean" (per label token); set by load()
        self.scoring = "continuation"  # or "first-token", "generate"; set by load()
        self.max_batch: int | None = None  # rows per suffix pass; None = from memory
        # True projects every position onto the vocabulary, as before logits_to_keep
        # (benchmarks/peer_eval_kit.py's "before" figure); results are the same.
        self.full_projection = False
        self.prefixes: PrefixLRU[PrefixState] = PrefixLRU(maxsize=4)

    # ----- loading -----------------------------------------------------------------

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> AudioLMAdapter:
        """Resolve ``location`` offline, refuse unsafe checkpoints, load model + processor."""
        import transformers

        checkpoint = resolve_location(location, options)
        options.progress(f"loading the processor of {location}")
        processor = cls.load_processor(checkpoint, options)
        model_class = getattr(transformers, cls.model_class_name)
        model, device, quant = load_pretrained(
            model_class, checkpoint, options, cls.skip_modules, cls.select_config
        )
        adapter = cls(model, processor, checkpoint, device, quant)
        adapter.label_score = check_label_score(options.label_score)
        adapter.scoring = check_scoring(options.scoring)
        return adapter

    @classmethod
    def select_config(cls, config: Any) -> Any:
        """The config of the part of the checkpoint this adapter runs (all of it here)."""
        return config

    @classmethod
    def load_processor(cls, checkpoint: Checkpoint, options: LoadOptions) -> Any:
        """Load the checkpoint's processor (tokenizer + feature extractor)."""
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(
                checkpoint.folder,
                local_files_only=True,
                trust_remote_code=options.trust_remote_code,
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"processor of {checkpoint.location} cannot be loaded: {exc}") from exc

    def describe(self) -> dict[str, object]:
        """Provenance for run.json."""
        dtype = getattr(self.model, "dtype", None) if self.model is not None else None
        return {
            "family": self.family,
            "location": self.checkpoint.location,
            "folder": str(self.checkpoint.folder),
            "revision": self.checkpoint.revision,
            "folder_hash": self.checkpoint.digest,
            "quant": self.quant,
            "device": self.device,
            "dtype": str(dtype).replace("torch.", "") if dtype is not None else None,
            "label_score": self.label_score,
            **({"scoring": self.scoring} if self.scoring != "continuation" else {}),
        }

    def unload(self) -> None:
        """Drop the model and every cached prefix, and return GPU memory."""
        self.prefixes.clear()
        self.model = None
        gc.collect()
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()

    # ----- prompt ------------------------------------------------------------------

    def head(self) -> str:
        """Chat text before the instruction: system turn, user turn opening, audio."""
        return (
            f"<|im_start|>system\n{self.system_prompt}<|im_end|>\n"
            f"<|im_start|>user\n{self.audio_placeholder}"
        )

    def chat_prompt(self, user_text: str) -> str:
        """The full chat text up to the assistant's answer, audio placeholder unexpanded.

        ``user_suffix`` (AF3's think-mode request) ends the user turn, after the token
        line, so every token variant still shares the audio + instruction prefix.
        """
        return f"{self.head()}{user_text}{self.user_suffix}<|im_end|>\n<|im_start|>assistant\n"

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without added special tokens (placeholders unexpanded)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ----- family hooks --------------------------------------------------------------

    def model_inputs(self, text: str, clip: Clip) -> dict[str, Any]:
        """Tensors for one forward over ``text`` with the clip's audio (expanded ids)."""
        inputs = self.processor(
            text=[text], audio=[_audio(clip)], sampling_rate=16000, return_tensors="pt"
        )
        return {k: v for k, v in inputs.items() if k != "num_audio_tokens"}

    def after_prefix(self, state: PrefixState, inputs: dict[str, Any]) -> None:
        """Hook run once a prefix is encoded (the Omni thinker records its rope delta)."""

    # ----- scoring -----------------------------------------------------------------

    def score(self, request: ScoreRequest) -> list[Prediction]:
        """Closed-set probabilities for each token variant (see the module docstring).

        ``label_score`` ``sum`` (the default) ranks labels by the summed log-probability
        of their tokens and the end of turn; ``mean`` by the mean per token, so a label
        of two tokens ("angry" in Qwen2's vocabulary) is not penalised for its length.
        ``--scoring first-token`` / ``generate`` take the served models' other methods
        (:mod:`cuelab.core.models.scoring_modes`).
        """
        labels = request.labels
        if self.scoring == "first-token":
            return first_token_predictions(self, request)
        if self.scoring == "generate":
            return generated_predictions(self, request)
        sums = self.request_logprobs(request)
        if self.label_score == "mean":
            lengths = self.request_lengths(request)
            sums = [[s / n for s, n in zip(row, ns)] for row, ns in zip(sums, lengths)]
        tag = "continuation" if self.label_score == "sum" else "continuation-mean"
        predictions = []
        for row in sums:
            probs = probabilities(row)
            best = int(np.argmax(probs))
            predictions.append(Prediction(labels[best], dict(zip(labels, probs)), scoring=tag))
        return predictions

    def label_lengths(
        self, task: PromptTemplate, labels: Sequence[str], token_texts: Sequence[str | None]
    ) -> list[list[int]]:
        """Tokens scored per label (its own and the end of turn), ``[variant][label]``."""
        return self._lengths([task.render(labels, t) for t in token_texts], labels)

    def request_lengths(self, request: ScoreRequest) -> list[list[int]]:
        """:meth:`label_lengths` of a request."""
        return self._lengths(request.instructions, request.labels)

    def _lengths(self, instructions: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
        prompts = [self.chat_prompt(text) for text in instructions]
        out = [[0] * len(labels) for _ in prompts]
        for row in label_rows(self.tokenize, prompts, labels, self.end_of_turn):
            out[row.variant][row.label] = len(row.ids) - row.span_start
        return out

    def label_logprobs(
        self,
        clip: Clip,
        task: PromptTemplate,
        labels: Sequence[str],
        token_texts: Sequence[str | None],
    ) -> list[list[float]]:
        """Summed log-probabilities ``[variant][label]`` of each label + end-of-turn."""
        return self.request_logprobs(ScoreRequest.from_prompt(clip, task, labels, token_texts))

    def request_logprobs(self, request: ScoreRequest) -> list[list[float]]:
        """:meth:`label_logprobs` of a request: the shared prefix is encoded once."""
        self._require_model()
        clip, labels = request.clip, request.labels
        if not labels or not request.instructions:
            raise ModelError("scoring needs at least one label and one token variant")
        prompts = [self.chat_prompt(text) for text in request.instructions]
        rows = label_rows(self.tokenize, prompts, labels, self.end_of_turn)
        sums = [[0.0] * len(labels) for _ in prompts]
        if self.prefix_reuse:
            scores = self._score_with_prefix(clip, self.head() + request.shared, rows)
        else:
            scores = [self._score_full(clip, prompts[r.variant] + labels[r.label], r) for r in rows]
        for row, score in zip(rows, scores):
            sums[row.variant][row.label] = score
        return sums

    def _score_full(self, clip: Clip, text: str, row: ScoredRow) -> float:
        import torch

        inputs = self.model_inputs(text + self.end_of_turn, clip)
        ids = inputs["input_ids"][0]
        extra = len(ids) - len(row.ids)
        start = row.span_start + extra
        keep = torch.arange(start - 1, len(ids) - 1)  # the positions that predict the span
        with torch.inference_mode():
            logits = self._forward_kept(keep, **inputs).logits[0]
        logp = torch.log_softmax(logits.float(), dim=-1)
        return float(logp.gather(1, ids[start:, None].to(logp.device)).sum())

    def _score_with_prefix(
        self, clip: Clip, prefix_text: str, rows: list[ScoredRow]
    ) -> list[float]:
        import torch

        prefix_ids = self.tokenize(prefix_text)
        k = shared_prefix_len(prefix_ids, rows)
        state = self._prefix_state(clip, prefix_text, prefix_ids, k)
        groups = split_rows(rows, k)
        per_chunk = self._variants_per_chunk(state, groups)
        scores: dict[tuple[int, int], float] = {}
        with torch.inference_mode():
            for begin in range(0, len(groups), max(1, per_chunk)):
                chunk = groups[begin : begin + max(1, per_chunk)]
                if per_chunk >= 1:
                    scores.update(score_batched(self, state, chunk))
                else:
                    scores.update(score_sequential(self, state, chunk))
        return [scores[(row.variant, row.label)] for row in rows]

    def _prefix_state(
        self, clip: Clip, prefix_text: str, prefix_ids: list[int], k: int
    ) -> PrefixState:
        import torch

        key = (_audio_hash(clip), hashlib.sha256(prefix_text.encode()).hexdigest(), k)
        state = self.prefixes.get(key)
        if state is not None:
            return state
        inputs = self.model_inputs(prefix_text, clip)
        extra = inputs["input_ids"].shape[1] - len(prefix_ids)
        if k < len(prefix_ids):  # a BPE merge across the boundary: keep the shared part
            length = k + extra
            inputs["input_ids"] = inputs["input_ids"][:, :length]
            inputs["attention_mask"] = inputs["attention_mask"][:, :length]
        with torch.inference_mode():
            out = self._forward_kept(1, **inputs, use_cache=True)  # only the last is read
        cache = getattr(out, "cache", None)
        if cache is None:  # transformers before the ``cache`` name
            cache = out.past_key_values
        state = PrefixState(cache, out.logits[:, -1:], inputs["input_ids"].shape[1])
        self.after_prefix(state, inputs)
        self.prefixes.put(key, state)
        return state

    def run_suffix(
        self, state: PrefixState, cache: Any, ids: Any, mask: Any, starts: Any, keep: Any
    ) -> Any:
        """Logits of ``ids`` on top of ``cache``; row i's first token sits at ``starts[i]``.

        Only the positions ``keep`` (an int: the last N; a 1-D tensor: those indices, for
        every row) get vocabulary logits: the scorers read a few positions per row.
        """
        kwargs = {
            "position_ids": self.position_ids(state, starts, ids.shape[1]),
            self.cache_argument: cache,
        }
        out = self._forward_kept(keep, input_ids=ids, attention_mask=mask, use_cache=True,
                                 **kwargs)  # fmt: skip
        return out.logits

    @functools.cached_property
    def keeps_logits(self) -> bool:
        """Whether the model's forward takes transformers' ``logits_to_keep``."""
        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _forward_kept(self, keep: Any, **kwargs: Any) -> Any:
        """A forward that projects onto the vocabulary only at the positions ``keep``.

        Most of a scoring pass is the vocabulary projection (156k words for the Qwen
        family) at positions whose logits are never read. ``keep`` follows
        ``logits_to_keep``: an int keeps the last N positions (0: all), a 1-D tensor the
        given indices. Models whose forward takes ``logits_to_keep`` (AF3) get it; for
        the others (Qwen2-Audio, the Omni thinker) the decoder's hidden states are
        sliced here and only those go through ``lm_head``. The result has ``logits``
        (batch x kept positions x vocabulary) and ``cache``.
        """
        if self.keeps_logits and not self.full_projection:
            return self._forward(logits_to_keep=keep, **kwargs)
        inner = getattr(self.model, "model", None)
        head = getattr(self.model, "lm_head", None)
        if inner is None or head is None or self.full_projection:
            # an unknown layout (or the benchmark's "before"): project all, then slice
            out = self._forward(**kwargs)
            return SimpleNamespace(logits=_kept(out.logits, keep), cache=_cache_of(out))
        out = self._forward(_call=inner, **kwargs)
        hidden = _kept(out.last_hidden_state, keep)
        return SimpleNamespace(logits=head(hidden), cache=_cache_of(out))

    @functools.cached_property
    def cache_argument(self) -> str:
        """``cache`` (transformers 5.2x and later) or the older ``past_key_values``."""
        params = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def position_ids(self, state: PrefixState, starts: Any, width: int) -> Any:
        """Explicit positions of a suffix pass (rows may sit after padding in the cache)."""
        import torch

        return starts[:, None] + torch.arange(width, device=starts.device)[None, :]

    def _forward(self, _call: Any = None, **kwargs: Any) -> Any:
        import torch

        moved = self._to_model(kwargs)
        try:
            return (self.model if _call is None else _call)(**moved)
        except torch.OutOfMemoryError as exc:
            raise ModelError(
                f"out of memory running {self.family} on {self.device}; use fewer token variants",
                remedy=errors.QUANTIZE,
            ) from exc

    def _to_model(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Move inputs to the model's device; audio features take the model's float dtype."""
        import torch

        device = next(self.model.parameters()).device
        moved = {}
        for key, value in tensors.items():
            if isinstance(value, torch.Tensor):
                value = value.to(device)
                if value.is_floating_point():
                    value = value.to(self.model.dtype)
            moved[key] = value
        return moved

    def _variants_per_chunk(self, state: PrefixState, groups: list[VariantGroup]) -> int:
        """How many variants (each with all its label rows) one batched pass may hold.

        0 means sequential scoring: one row at a time, cropping the cache back after each.
        """
        labels = max(len(g.rows) for g in groups)
        if self.max_batch is not None:
            return self.max_batch // labels if self.max_batch > 1 else 0
        cfg = self.model.config.get_text_config()
        heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        elem = 4 if self.quant == "fp32" else 2
        per_token = 2 * cfg.num_hidden_layers * heads * head_dim * elem
        width = max(len(g.shared) for g in groups) + max(g.rest_width for g in groups)
        per_variant = labels * ((state.length + width) * per_token + width * cfg.vocab_size * 4)
        if self.device == "cuda":
            import torch

            budget = int(torch.cuda.mem_get_info()[0] * GPU_KV_FRACTION)
        else:
            budget = CPU_KV_BUDGET
        return int(budget // per_variant)

    # ----- generation --------------------------------------------------------------

    def complete(self, request: GenerateRequest) -> Generation:
        """A free answer with its prompt, decoding, finish reason and token count.

        Decoding is built here, never taken from the checkpoint's generation config:
        greedy is greedy (no shipped repetition penalty, top-k or temperature), and
        generation stops at the family's end of turn, passed explicitly (the Omni
        thinker's own config names none). A seeded draw seeds torch inside
        ``torch.random.fork_rng``: the same seed gives the same text and the caller's
        random state is left as it was.
        """
        import torch
        from transformers import GenerationConfig

        clip, max_new_tokens, sampling = request.clip, request.max_new_tokens, request.sampling
        if request.stop:
            raise ModelError(f"model family {self.family!r} does not take stop strings")
        self._require_model()
        prompt = self.chat_prompt(request.instruction)
        inputs = self._to_model(self.model_inputs(prompt, clip))
        decoding = self.decoding(max_new_tokens, sampling)
        config = GenerationConfig(**decoding)
        with torch.inference_mode(), self.last_position_head():
            if sampling is None:
                out = self.model.generate(**inputs, generation_config=config)
            else:
                with torch.random.fork_rng(devices=self._rng_devices()):
                    torch.manual_seed(sampling.seed)
                    out = self.model.generate(**inputs, generation_config=config)
        new = [int(t) for t in out[0, inputs["input_ids"].shape[1] :]]
        stops = set(decoding["eos_token_id"])
        ended = bool(new) and new[-1] in stops
        text = str(self.tokenizer.decode(new, skip_special_tokens=True)).strip()
        finish = "stop" if ended or len(new) < max_new_tokens else "length"
        return Generation(text, finish, len(new), prompt, decoding)

    @contextlib.contextmanager
    def last_position_head(self) -> Iterator[None]:
        """Within the block, ``lm_head`` projects only each pass's last position.

        ``generate`` reads nothing but the last position's logits; it asks for just those
        through ``logits_to_keep`` when the model's forward takes it. For the families
        whose forward does not (Qwen2-Audio, the Omni thinker), the head is wrapped for
        the call, so the prompt's prefill does not project every prompt position.
        """
        head = getattr(self.model, "lm_head", None)
        if self.keeps_logits or head is None:
            yield
            return
        self.model.lm_head = _last_position(head)
        try:
            yield
        finally:
            self.model.lm_head = head

    def stop_ids(self) -> list[int]:
        """The family's end-of-turn tokens that the vocabulary has (``<|im_end|>``, ...)."""
        vocab = self.tokenizer.get_vocab()
        names = dict.fromkeys((self.end_of_turn, *END_OF_TURN_TOKENS))
        return [int(vocab[name]) for name in names if name in vocab]

    def decoding(self, max_new_tokens: int, sampling: Sampling | None) -> dict[str, Any]:
        """Every generation parameter: greedy, or the draw's temperature and top-p.

        Sampling sets top-k off (0) so that the distribution is the one the run records.
        """
        stops = self.stop_ids()
        if not stops:
            raise ModelError(f"{self.checkpoint.location}: the tokenizer has no end-of-turn token")
        pad = self.tokenizer.pad_token_id
        out: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "num_beams": 1,
            "repetition_penalty": 1.0,
            "eos_token_id": stops,
            "pad_token_id": stops[0] if pad is None else int(pad),
        }
        if sampling is None:
            out["do_sample"] = False
        else:
            out.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                       top_k=0)  # fmt: skip
        return out

    def prompt_text(
        self, task: PromptTemplate, labels: Sequence[str], token_text: str | None
    ) -> str | None:
        """The chat text of one variant, up to the assistant's answer."""
        return self.chat_prompt(task.render(labels, token_text))

    def _rng_devices(self) -> list[int]:
        """CUDA devices whose random state a seeded draw forks (none on a CPU)."""
        import torch

        if self.device != "cuda" or not torch.cuda.is_available():
            return []
        return list(range(torch.cuda.device_count()))

    def _require_model(self) -> None:
        if self.model is None:
            raise ModelError(f"model {self.checkpoint.location} was unloaded")


def _kept(tensor: Any, keep: Any) -> Any:
    """``tensor`` (batch x positions x ...) at the positions ``keep`` (``logits_to_keep``)."""
    if isinstance(keep, int):
        return tensor if keep == 0 else tensor[:, -keep:]
    return tensor[:, keep.to(tensor.device)]


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _last_position(head: Any) -> Any:
    """A module that applies ``head`` to the last position only (see ``last_position_head``)."""
    import torch

    class LastPositionHead(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, hidden: Any) -> Any:
            return self.inner(hidden[:, -1:, :])

    return LastPositionHead(head)


def _audio(clip: Clip) -> np.ndarray:
    if clip.sr != 16000:
        raise ModelError(
            f"clip {clip.utt_id or '(unnamed)'} is at {clip.sr} Hz; models need 16 kHz"
        )
    return np.asarray(clip.audio, dtype=np.float32)


def _audio_hash(clip: Clip) -> str:
    return hashlib.sha256(np.ascontiguousarray(clip.audio, dtype=np.float32).tobytes()).hexdigest()
