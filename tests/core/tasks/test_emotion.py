"""The emotion task: label sets and prompt templates."""

from __future__ import annotations

import pytest

from cuelab.core.errors import ModelError
from cuelab.core.tasks.emotion import LABEL_SETS, parse_labels
from cuelab.core.tasks.prompts import load_task


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
