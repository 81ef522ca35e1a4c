from __future__ import annotations

import pytest

from cuelab.core.cues.tokens import CONCEPTS, VOCAB, TokenSet, TokenTemplate, parse_tokens
from cuelab.core.errors import TokenError

FULL = {
    "ENERGY": "HIGH",
    "PITCH": "LOW",
    "BRIGHTNESS": "VERY_DARK",
    "DYNAMICS": "MID",
    "FORMANTS": "VERY_HIGH",
    "VOICE_QUALITY": "BREATHY",
}


def test_vocabularies_are_exactly_the_papers() -> None:
    assert CONCEPTS == ("ENERGY", "PITCH", "BRIGHTNESS", "DYNAMICS", "FORMANTS", "VOICE_QUALITY")
    levels = ("VERY_LOW", "LOW", "MID", "HIGH", "VERY_HIGH")
    assert VOCAB["ENERGY"] == VOCAB["PITCH"] == VOCAB["FORMANTS"] == levels
    assert VOCAB["BRIGHTNESS"] == ("VERY_DARK", "DARK", "MID", "BRIGHT", "VERY_BRIGHT")
    assert VOCAB["DYNAMICS"] == ("VERY_STATIC", "STATIC", "MID", "DYNAMIC", "VERY_DYNAMIC")
    assert VOCAB["VOICE_QUALITY"] == (
        "MODAL", "BREATHY", "PRESSED", "ROUGH", "CREAKY", "UNVOICED",
    )  # fmt: skip


def test_tokenset_canonical_order_and_default_text() -> None:
    shuffled = dict(reversed(list(FULL.items())))
    ts = TokenSet(shuffled)
    assert list(ts) == list(CONCEPTS)
    assert ts.text() == (
        "ENERGY=HIGH PITCH=LOW BRIGHTNESS=VERY_DARK DYNAMICS=MID FORMANTS=VERY_HIGH "
        "VOICE_QUALITY=BREATHY"
    )
    assert parse_tokens(ts.text()) == ts


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ({"ENERGY": "LOUD"}, "'LOUD' is not a ENERGY token"),
        ({"LOUDNESS": "HIGH"}, "unknown concept 'LOUDNESS'"),
        ({"BRIGHTNESS": "HIGH"}, "'HIGH' is not a BRIGHTNESS token"),
    ],
)
def test_tokenset_rejects_bad_vocab(tokens: dict[str, str], message: str) -> None:
    with pytest.raises(TokenError, match=message):
        TokenSet(tokens)


def test_parse_is_lenient_about_case_and_spaces_but_strict_about_content() -> None:
    ts = parse_tokens("energy = high   pitch=low, voice_quality=modal")
    assert ts.to_dict() == {"ENERGY": "HIGH", "PITCH": "LOW", "VOICE_QUALITY": "MODAL"}
    with pytest.raises(TokenError, match="appears twice"):
        parse_tokens("ENERGY=HIGH ENERGY=LOW")
    with pytest.raises(TokenError, match="no concept tokens"):
        parse_tokens("hello world")


def test_custom_template_round_trip_and_file(tmp_path) -> None:
    tpl = TokenTemplate(
        item="<{concept}:{token}>", sep=", ", prefix="[", suffix="]", lowercase=True
    )
    ts = TokenSet(FULL)
    text = tpl.format(ts)
    assert text.startswith("[<energy:high>, <pitch:low>")
    assert tpl.parse(text) == ts
    f = tmp_path / "tpl.txt"
    f.write_text("# my template\n{concept} is {token}\nsep=; \n", encoding="utf-8")
    loaded = TokenTemplate.from_file(f)
    assert loaded.format(ts).split("; ")[0] == "ENERGY is HIGH"
    assert loaded.parse(loaded.format(ts)) == ts
    with pytest.raises(TokenError, match="must contain"):
        TokenTemplate(item="{concept}")


def test_without_and_replace() -> None:
    ts = TokenSet(FULL)
    assert "PITCH" not in ts.without("pitch")
    assert len(ts.without("PITCH")) == 5
    assert ts.replace(ENERGY="VERY_LOW")["ENERGY"] == "VERY_LOW"
    assert ts["ENERGY"] == "HIGH"  # immutable


def test_parse_rejects_unreadable_items_instead_of_dropping_them() -> None:
    with pytest.raises(TokenError, match="cannot read 'PITCH:LOW'"):
        parse_tokens("ENERGY=HIGH PITCH:LOW")
    with pytest.raises(TokenError, match="cannot read 'loud'"):
        parse_tokens("loud ENERGY=HIGH")
    assert parse_tokens("ENERGY=HIGH; PITCH=LOW,").to_dict() == {"ENERGY": "HIGH", "PITCH": "LOW"}


def test_template_file_keeps_non_ascii_and_escapes(tmp_path) -> None:
    f = tmp_path / "tpl.txt"
    f.write_text("{concept}→{token}\nsep= · \nprefix=[\\t\n", encoding="utf-8")
    tpl = TokenTemplate.from_file(f)
    assert tpl.sep == " · " and tpl.prefix == "[\t"
    ts = TokenSet({"ENERGY": "HIGH", "PITCH": "LOW"})
    assert tpl.format(ts) == "[\tENERGY→HIGH · PITCH→LOW"
    assert tpl.parse(tpl.format(ts)) == ts
