"""Label-span bookkeeping, the label softmax, answer parsing and the prefix LRU (no model)."""

from __future__ import annotations

import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models.scoring import (
    PrefixLRU,
    label_rows,
    parse_answer,
    probabilities,
    shared_prefix_len,
)
from cuelab.core.tasks.emotion import LABEL_SETS


def _char_tokenizer(merge: str | None = None):
    """Characters as ids; ``merge`` (two characters) becomes one token, like a BPE merge."""

    def tokenize(text: str) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            if merge and text.startswith(merge, i):
                ids.append(1000)
                i += 2
            else:
                ids.append(ord(text[i]))
                i += 1
        return ids

    return tokenize


def test_label_rows_locate_spans_and_share_the_prefix() -> None:
    tok = _char_tokenizer()
    rows = label_rows(tok, ["P:x\n", "P:y\n"], ["ab", "c"], "$")
    assert [(r.variant, r.label) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert rows[0].ids[rows[0].span_start :] == tuple(tok("ab$"))
    assert shared_prefix_len(tok("P:"), rows) == 2


def test_label_rows_fall_back_to_whole_text_tokenisation() -> None:
    # "\na" merges only when tokenised whole: the pieces differ, but the prompt's
    # tokens still prefix the whole, so the whole is used and the span found.
    tok = _char_tokenizer(merge="$$")
    rows = label_rows(tok, ["Q\n"], ["a$"], "$")
    assert rows[0].ids == tuple(tok("Q\na$$"))
    assert rows[0].span_start == 2
    # A label that swallows the prompt's last token cannot be scored.
    tok = _char_tokenizer(merge="\na")
    with pytest.raises(ModelError, match="label 'a'"):
        label_rows(tok, ["Q\n"], ["a"], "$")


def test_probabilities_are_a_stable_softmax() -> None:
    probs = probabilities([-1000.0, -1001.0])
    assert probs[0] == pytest.approx(1 / (1 + 2.718281828**-1))
    assert sum(probs) == pytest.approx(1.0)


def test_prefix_lru_evicts_least_recent() -> None:
    lru: PrefixLRU[int] = PrefixLRU(maxsize=2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c"), len(lru)) == (1, 3, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sad", "sad"),
        ("Neutral.", "neutral"),
        ("The voice is loud and tense.\nAnswer: angry", "angry"),
        ("I hear anger in the voice.", "angry"),
        ("It could be happy or sad.", None),
        ("The speaker sounds saddened", None),
        ("", None),
        ("Sad or happy, hard to say.", None),
        ("Answer: happy, not sad", "happy"),
    ],
)
def test_parse_answer_never_guesses(text: str, expected: str | None) -> None:
    assert parse_answer(text, LABEL_SETS["iemocap"]) == expected
