"""Chat requests for an audio clip, and the three ways to score a closed label set remotely.

The user turn holds the audio as an ``input_audio`` part (base64 WAV, 32-bit
float so the server decodes exactly the samples an in-process model gets),
then the task text: the instruction, with the concept-token line last. The
server applies the model's chat template, as it does for every client.

Scoring, from the most exact to the most general:

* ``first-token``: one request per variant with ``max_tokens=1``,
  ``temperature=0`` and ``logprobs``; the label probabilities are the softmax
  over the first tokens of the labels (which must differ). vLLM's
  ``logprob_token_ids`` returns exactly those tokens; without it the top
  ``top_logprobs`` (at most 20) are read. A label whose first token is not
  among them has a log-probability at most the lowest one shown: CueLab uses
  that bound and marks the row ``first-token-bounded``. The argmax is then
  exact (as long as one label is shown), the odds between shown labels are
  exact, and a missing label's odds against them are an upper bound; its
  probability is approximate. When no label is shown, the row is unparsed,
  never guessed.
* ``continuation``: one request per variant and label, the label and the
  end-of-turn token written as the assistant's turn
  (``continue_final_message``), scored with ``prompt_logprobs``: the summed
  log-probability of the whole label and the end of turn, the same number an
  in-process adapter computes.
* ``generate``: a short greedy answer mapped to a label by
  :func:`cuelab.core.models.scoring.parse_answer`; one that names no label,
  or several, is unparsed. For servers that return no log-probabilities.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cuelab.core import errors
from cuelab.core.errors import ModelError
from cuelab.core.models.base import Generation
from cuelab.core.models.remote.answers import ServerAnswerError, logprob_value
from cuelab.core.safeio import FIELD_LIMIT

log = logging.getLogger(__name__)

#: At most this many alternatives per position (OpenAI's limit, vLLM's default --max-logprobs).
TOP_LOGPROBS = 20
#: A harmless text-only turn used to learn how the server's template tokenises a label.
PROBE_TEXT = "x"
#: An answer is kept to at most this many characters per token asked for (``max_tokens``)
#: and :data:`ANSWER_CHAR_LIMIT` in all; a server that ignores ``max_tokens`` is cut there
#: (the row says ``finish_reason = length``), so no answer outgrows a table cell.
CHARS_PER_TOKEN = 64
ANSWER_CHAR_LIMIT = FIELD_LIMIT // 2


def wav_base64(audio: np.ndarray, sr: int, rate: int = 16000) -> str:
    """Base64 of a mono 32-bit float WAV of ``audio`` at ``rate`` (resampled when needed)."""
    import soundfile as sf

    samples = np.asarray(audio, dtype=np.float32)
    if sr != rate:
        from cuelab.core.audio.io import resample

        samples = resample(samples, sr, rate)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="FLOAT")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def audio_messages(system: str | None, audio_b64: str, text: str) -> list[dict[str, Any]]:
    """The conversation for one variant: an optional system turn, then audio + task text."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "input_audio", "input_audio": {"data": audio_b64, "format": "wav"}},
                {"type": "text", "text": text},
            ],
        }
    )
    return messages


def text_messages(system: str | None, text: str = PROBE_TEXT) -> list[dict[str, Any]]:
    """A text-only conversation (for tokenisation probes)."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    return messages


@dataclass(frozen=True)
class LabelTokens:
    """How the served model's template tokenises each label as the assistant's answer.

    Attributes:
        ids: per label, its token ids right after the assistant turn opens.
        firsts: per label, its first token as the server writes it in a response
            (``/detokenize``), to match responses that name tokens by text.
        end_of_turn: the id and text of the token that closes the assistant turn.
    """

    ids: dict[str, tuple[int, ...]]
    firsts: dict[str, str]
    end_of_turn: tuple[int, str] | None

    def first_tokens_distinct(self) -> bool:
        """True when every label has a token and no two labels start with the same one."""
        firsts = [ids[0] for ids in self.ids.values() if ids]
        return len(firsts) == len(self.ids) and len(set(firsts)) == len(firsts)


def token_list(answer: dict[str, Any]) -> dict[str, Any]:
    """A ``/tokenize`` answer whose ``tokens`` are a list of ints (else the server is broken)."""
    tokens = answer.get("tokens")
    if not isinstance(tokens, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens
    ):
        raise ServerAnswerError("the answer has no list of token ids ('tokens')")
    return answer


def detokenized(answer: dict[str, Any]) -> dict[str, Any]:
    """A ``/detokenize`` answer whose ``prompt`` is a text."""
    if not isinstance(answer.get("prompt"), str):
        raise ServerAnswerError("the answer has no decoded text ('prompt')")
    return answer


def _tokenize(pool: Any, model: str, messages: list[dict[str, Any]], **flags: bool) -> Any:
    body = {
        "model": model,
        "messages": messages,
        "add_special_tokens": False,
        **flags,
    }
    return pool.root_post("/tokenize", body, read=token_list)


def label_tokens(
    pool: Any, model: str, system: str | None, labels: Sequence[str]
) -> LabelTokens | None:
    """Ask the server's ``/tokenize`` how each label is tokenised as an answer.

    Returns None when the server has no ``/tokenize`` (hosted APIs).

    Raises:
        ModelError: the label's tokens do not extend the prompt's (a template that
            rewrites the assistant turn), so no span can be scored.
    """
    base_messages = text_messages(system)
    base = _tokenize(pool, model, base_messages, add_generation_prompt=True)
    if base is None:
        return None
    prefix = list(base["tokens"])
    ids: dict[str, tuple[int, ...]] = {}
    firsts: dict[str, str] = {}
    for label in labels:
        turn = [*base_messages, {"role": "assistant", "content": label}]
        out = _tokenize(pool, model, turn, add_generation_prompt=False, continue_final_message=True)
        if out is None:
            return None
        tokens = list(out["tokens"])
        if tokens[: len(prefix)] != prefix:
            raise ModelError(
                f"the server's template does not put the answer {label!r} after the prompt tokens",
                remedy=errors.SCORING_GENERATE,
            )
        ids[label] = tuple(int(t) for t in tokens[len(prefix) :])
        firsts[label] = _detokenize(pool, model, ids[label][:1])
    return LabelTokens(ids, firsts, _end_of_turn(pool, model, base_messages))


def _detokenize(pool: Any, model: str, ids: Sequence[int]) -> str:
    """The text of ``ids`` as the server decodes it ("" when it cannot)."""
    if not ids:
        return ""
    out = pool.root_post("/detokenize", {"model": model, "tokens": list(ids)}, read=detokenized)
    return str(out["prompt"]) if out else ""


def _end_of_turn(pool: Any, model: str, messages: list[dict[str, Any]]) -> tuple[int, str] | None:
    """The token after a finished assistant turn's text: the family's end of turn."""
    turn = [*messages, {"role": "assistant", "content": PROBE_TEXT}]
    open_ = _tokenize(pool, model, turn, add_generation_prompt=False, continue_final_message=True)
    closed = _tokenize(pool, model, turn, add_generation_prompt=False)
    if not open_ or not closed:
        return None
    a, b = list(open_["tokens"]), list(closed["tokens"])
    if len(b) <= len(a) or b[: len(a)] != a:
        return None
    return int(b[len(a)]), _detokenize(pool, model, b[len(a) : len(a) + 1])


# ----- reading responses ---------------------------------------------------------------


def _token_id(entry: Mapping[str, Any]) -> int | None:
    token = str(entry.get("token", ""))
    if token.startswith("token_id:"):
        try:
            return int(token[len("token_id:") :])
        except ValueError:
            return None
    return None


def first_token_logprobs(
    response: Mapping[str, Any],
    labels: Sequence[str],
    tokens: LabelTokens,
) -> tuple[dict[str, float], set[str]]:
    """Log-probabilities of each label's first token in a one-token response.

    Entries are matched by id (``token_id:N``, vLLM's ``return_tokens_as_token_ids``)
    or else by the token's string. A label whose first token is missing gets the lowest
    log-probability shown (an upper bound on its own).

    Returns:
        (label -> log-probability, the labels that were bounded, not read).

    Raises:
        ModelError: the response has no log-probabilities.
    """
    content = logprob_entries(response)
    if not content:
        raise ModelError("the server returned no log-probabilities", remedy=errors.SCORING_GENERATE)
    first = content[0]
    tops = first.get("top_logprobs") or []
    if not isinstance(tops, list) or not all(isinstance(e, dict) for e in tops):
        raise ServerAnswerError("the answer's top_logprobs is not a list of entries")
    entries = [first, *tops]
    by_id: dict[int, float] = {}
    by_str: dict[str, float] = {}
    shown: list[float] = []
    for entry in entries:
        lp = logprob_value(entry.get("logprob"), f"token {str(entry.get('token', '?'))[:40]!r}")
        shown.append(lp)
        tid = _token_id(entry)
        if tid is not None:
            by_id[tid] = max(lp, by_id.get(tid, -math.inf))
        else:
            text = str(entry.get("token", ""))
            by_str[text] = max(lp, by_str.get(text, -math.inf))
    floor = min(shown) if shown else -math.inf
    out: dict[str, float] = {}
    bounded: set[str] = set()
    for label in labels:
        tid, text = tokens.ids[label][0], tokens.firsts[label]
        if tid in by_id:
            out[label] = by_id[tid]
        elif not by_id and text and text in by_str:
            out[label] = by_str[text]
        else:
            out[label] = floor
            bounded.add(label)
    return out, bounded


def logprob_entries(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-token log-probability entries of a chat answer (empty when it has none).

    Raises:
        ServerAnswerError: ``logprobs`` is there but is not a list of entries.
    """
    choice = (response.get("choices") or [{}])[0]
    block = choice.get("logprobs") if isinstance(choice, dict) else None
    if block is None:
        return []
    content = block.get("content") if isinstance(block, dict) else block
    if content is None:
        return []
    if not isinstance(content, list) or not all(isinstance(e, dict) for e in content):
        raise ServerAnswerError("the answer's logprobs are not a list of token entries")
    return content


def best_label(
    labels: Sequence[str],
    logprobs: Mapping[str, float],
    bounded: set[str] | frozenset[str] = frozenset(),
) -> str:
    """The label with the highest log-probability; a shown label wins a tie with a bounded one.

    A bounded label was given the lowest log-probability shown, so when the one shown
    label is that lowest entry they tie; its own value is at most that, so the shown
    label is the answer.
    """
    return max(labels, key=lambda lab: (logprobs[lab], lab not in bounded))


def continuation_logprob(response: Mapping[str, Any], expected: Sequence[int]) -> float:
    """Summed prompt log-probability of the last ``len(expected)`` prompt tokens.

    Raises:
        ModelError: no ``prompt_logprobs`` in the response, or the prompt does not end
            with the expected tokens (the server tokenised the answer differently).
    """
    rows = response.get("prompt_logprobs")
    if not isinstance(rows, list) or len(rows) < len(expected) + 1:
        raise ModelError(
            "the server returned no prompt log-probabilities", remedy=errors.SCORING_GENERATE
        )
    total = 0.0
    for row, token in zip(rows[-len(expected) :], expected):
        if row is not None and not isinstance(row, dict):
            raise ServerAnswerError("the answer's prompt_logprobs are not a list of entries")
        entry = (row or {}).get(str(token))
        if entry is None:
            raise ModelError(
                f"the server's prompt does not end with the expected answer tokens (missing {token})"
            )
        if not isinstance(entry, dict):
            raise ServerAnswerError(f"the prompt log-probability of token {token} is not an entry")
        total += logprob_value(entry.get("logprob"), f"prompt token {token}")
    return total


def softmax(logprobs: Mapping[str, float]) -> dict[str, float]:
    """Probabilities over the labels from their log-probabilities (stable)."""
    keys = list(logprobs)
    values = np.array([logprobs[k] for k in keys], dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return dict.fromkeys(keys, math.nan)
    exps = np.exp(values - finite.max())
    exps[~np.isfinite(values)] = 0.0
    total = exps.sum()
    return {k: float(e / total) for k, e in zip(keys, exps)}


# ----- bounded answers ----------------------------------------------------------------------


def answer_limit(max_tokens: int) -> int:
    """The most characters kept of an answer generated with ``max_tokens``."""
    return max(1, min(ANSWER_CHAR_LIMIT, max_tokens * CHARS_PER_TOKEN))


def generation(answer: dict[str, Any], max_tokens: int) -> Generation:
    """The text, finish reason and token count of a chat answer, cut to its bound.

    Raises:
        ServerAnswerError: the message's content is not a text.
    """
    choice = answer["choices"][0]
    content = (choice.get("message") or {}).get("content")
    if content is not None and not isinstance(content, str):
        raise ServerAnswerError(f"the answer's content is a {type(content).__name__}, not a text")
    text = (content or "").strip()
    finish = choice.get("finish_reason")
    usage = answer.get("usage")
    count = usage.get("completion_tokens") if isinstance(usage, dict) else None
    tokens = count if isinstance(count, int) and not isinstance(count, bool) else 0
    limit = answer_limit(max_tokens)
    if len(text) > limit or tokens > max_tokens:
        log.warning("the server sent %d characters (%d tokens) for max_tokens=%d; kept %d "
                    "characters", len(text), tokens, max_tokens, limit)  # fmt: skip
        text, finish, tokens = text[:limit], "length", min(tokens, max_tokens)
    return Generation(text=text, finish_reason=str(finish or "")[:40], tokens=max(tokens, 0))


def impossible(logprobs: dict[str, float]) -> bool:
    """True when no label has a finite log-probability: the row is unparsed, never guessed."""
    return not any(math.isfinite(v) for v in logprobs.values())


def checked_probe(answer: dict[str, Any]) -> dict[str, Any]:
    """A probe's chat answer whose log-probability entries, if any, are well formed."""
    for entry in logprob_entries(answer)[:1]:
        logprob_value(entry.get("logprob"), "the probe's token")
        tops = entry.get("top_logprobs") or []
        if not isinstance(tops, list) or not all(isinstance(e, dict) for e in tops):
            raise ServerAnswerError("the answer's top_logprobs is not a list of entries")
        for top in tops:
            logprob_value(top.get("logprob"), "the probe's top token")
    return answer
