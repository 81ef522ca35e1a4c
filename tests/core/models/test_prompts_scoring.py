"""Prompt templates, label sets, label-span bookkeeping and answer parsing (no model)."""

from __future__ import annotations

import pytest

from cuelab.core.errors import ModelError
from cuelab.core.prompts import LABEL_SETS, load_task, parse_labels
from cuelab.core.scoring import (
    PrefixLRU,
    label_rows,
    parse_answer,
    probabilities,
    shared_prefix_len,
)


def test_label_sets() -> None:
    assert parse_labels("iemocap") == ("angry", "happy", "neutral", "sad")
    assert parse_labels("aibo") == ("angry", "emphatic", "neutral", "positive", "rest")
    assert parse_labels("calm, tense ,bored") == ("calm", "tense", "bored")
    with pytest.raises(ModelError, match="duplicate"):
        parse_labels("a,b,a")
    with pytest.raises(ModelError, match="empty"):
        parse_labels(" , ")


def test_templates_put_tokens_after_the_instruction() -> None:
    task = load_task("ser", labels="aibo")
    plain = task.render(LABEL_SETS["aibo"], None)
    with_tokens = task.render(LABEL_SETS["aibo"], "ENERGY=HIGH PITCH=LOW")
    assert "angry, emphatic, neutral, positive, rest" in plain
    assert with_tokens.startswith(plain)
    assert with_tokens.endswith("Acoustic concept tokens: ENERGY=HIGH PITCH=LOW")
    assert task.render(None, "  ") == task.render(None, None)


def test_edited_template_is_used(tmp_path) -> None:
    (tmp_path / "ser_audio_only.txt").write_text("Emotion? {labels}\n", encoding="utf-8")
    (tmp_path / "ser_with_tokens.txt").write_text("Emotion? {labels}\nT: {tokens}\n")
    task = load_task("ser", prompts_dir=tmp_path)
    assert task.render(["a", "b"], "X=1") == "Emotion? a, b\nT: X=1"
    (tmp_path / "ser_with_tokens.txt").write_text("no placeholder")
    with pytest.raises(ModelError, match="tokens"):
        load_task("ser", prompts_dir=tmp_path)


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


def test_prefix_lru_evicts_least_recent() -> None:
    lru: PrefixLRU[int] = PrefixLRU(maxsize=2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c"), len(lru)) == (1, 3, 2)
