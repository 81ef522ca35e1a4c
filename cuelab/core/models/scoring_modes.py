"""``--scoring`` for in-process audio LMs: the same three methods served models offer.

* ``continuation`` (the default, ``auto`` too): the summed log-probability of each
  label's tokens and the end of turn (:meth:`AudioLMAdapter.label_logprobs`).
* ``first-token``: one forward pass per variant; a softmax over the labels'
  first tokens at the answer position. A served model's ``first-token`` reads the
  same log-probabilities from the server, so both give the same distribution.
* ``generate``: a greedy answer of at most :data:`GENERATE_SCORING_TOKENS`
  tokens, mapped to a label by :func:`cuelab.core.models.scoring.parse_answer`
  (the served runs' rules); an answer naming no label is unparsed and counted.

``auto`` means ``continuation`` for in-process and served models alike, so the
same checkpoint gives the same numbers whichever way it runs.
"""

from __future__ import annotations

from typing import Any

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Prediction
from cuelab.core.models.capabilities import GenerateRequest, ScoreRequest
from cuelab.core.models.scoring import label_rows, parse_answer, probabilities

#: Generated answers mapped to a label are at most this long (as for served models).
GENERATE_SCORING_TOKENS = 32
IN_PROCESS_SCORING = ("auto", "continuation", "first-token", "generate")


def check_scoring(scoring: str | None) -> str:
    """The in-process method for a ``--scoring`` choice (``auto`` is ``continuation``)."""
    value = (scoring or "auto").strip().lower()
    if value not in IN_PROCESS_SCORING:
        raise ModelError(f"scoring {value!r} is not one of {', '.join(IN_PROCESS_SCORING)}")
    return "continuation" if value == "auto" else value


def first_token_predictions(adapter: Any, request: ScoreRequest) -> list[Prediction]:
    """Softmax over each label's first token after the prompt, per variant.

    Raises:
        ModelError: two labels share their first token (the method cannot tell them apart).
    """
    import torch

    adapter._require_model()
    clip, labels = request.clip, request.labels
    prompts = [adapter.chat_prompt(text) for text in request.instructions]
    firsts: list[dict[int, int]] = [{} for _ in prompts]
    for row in label_rows(adapter.tokenize, prompts, labels, adapter.end_of_turn):
        firsts[row.variant][row.label] = row.ids[row.span_start]
    out = []
    for prompt, first in zip(prompts, firsts):
        ids = [first[j] for j in range(len(labels))]
        if len(set(ids)) != len(ids):
            raise ModelError(
                f"{adapter.checkpoint.location}: first-token scoring is not possible "
                "(labels share a first token)"
            )
        inputs = adapter.model_inputs(prompt, clip)
        with torch.inference_mode():
            logits = adapter._forward(**inputs).logits[0, -1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        probs = probabilities([float(logp[i]) for i in ids])
        best = max(range(len(labels)), key=lambda j: probs[j])
        out.append(Prediction(labels[best], dict(zip(labels, probs)), scoring="first-token"))
    return out


def generated_predictions(adapter: Any, request: ScoreRequest) -> list[Prediction]:
    """A greedy answer per variant, parsed to a label with the served runs' rules."""
    labels = request.labels
    out = []
    for text in request.instructions:
        gen = adapter.complete(GenerateRequest(request.clip, text, GENERATE_SCORING_TOKENS))
        label = parse_answer(gen.text, labels)
        out.append(Prediction(label, {}, raw_output=gen.text, unparsed=label is None,
                              scoring="generate", finish_reason=gen.finish_reason))  # fmt: skip
    return out
