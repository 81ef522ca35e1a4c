"""Audio edits: the text form, and every edit measured on speech.

The speech is espeak-ng synthesis (the shipped demo clips, made with espeak-ng
at several pitches, one female and one male voice), so the tests run offline.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.audio.edit_engines import analyse_world, apply_edit
from cuelab.core.audio.edit_measure import check_edit, measure_edit
from cuelab.core.audio.edits import (
    Edit,
    EditChain,
    EditError,
    parse_edit,
    parse_edit_list,
)
from cuelab.core.audio.io import load_audio

DEMO = Path(__file__).resolve().parents[3] / "assets" / "demo"
CLIPS = ["spk01_f_neutral_02.flac", "spk05_m_neutral_02.flac"]


@pytest.fixture(scope="module", params=CLIPS)
def speech(request: pytest.FixtureRequest) -> tuple[np.ndarray, int]:
    return load_audio(DEMO / request.param, sr=16000)


@pytest.mark.parametrize(
    "text",
    [
        "pitch=+2st",
        "pitch=-3.5st",
        "pitch-range=0.5",
        "tempo=1.2",
        "gain=-6dB",
        "loudness=-23LUFS",
        "tilt=-3dB/oct",
        "formant=1.1",
        "jitter=2%",
        "shimmer=2%",
        "breathiness=+6dB",
        "resynth",
        "none",
        "pitch=+2st,tempo=1.2",
        "pitch=+2st,gain=-6dB,tilt=+1.5dB/oct",
    ],
)
def test_text_round_trips(text: str) -> None:
    chain = parse_edit(text)
    assert chain.text() == text
    assert parse_edit(chain.text()) == chain


def test_loose_spellings_normalise() -> None:
    assert parse_edit(" PITCH = 2 ST , tempo=1.20 ").text() == "pitch=+2st,tempo=1.2"
    assert parse_edit("gain=+0dB").edits == (Edit("gain", 0.0),)
    assert parse_edit("pitch=-0st").text() == "pitch=+0st"
    assert parse_edit("RESYNTH").is_resynth
    assert parse_edit("none") == EditChain(())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pich=+2st", "unknown edit 'pich'"),
        ("pitch", "needs a value"),
        ("pitch=two", "needs a number"),
        ("pitch=+2dB", "takes 'st'"),
        ("tempo=1.2x", "no unit"),
        ("tempo=0", "between 0.25 and 4"),
        ("pitch=+30st", "between -24 and 24"),
        ("pitch=nan", "needs a number"),
        ("pitch=+2st,pitch=+1st", "pitch is given twice"),
        ("resynth,gain=-6dB", "resynth stands alone"),
        ("pitch=+2st,,tempo=1.2", "empty item"),
        ("", "empty edit"),
    ],
)
def test_bad_text_is_one_clear_line(text: str, needle: str) -> None:
    with pytest.raises(EditError) as info:
        parse_edit(text)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_edit_list_splits_on_semicolons_and_drops_repeats() -> None:
    chains = parse_edit_list("pitch=+2st; pitch=-2st;tempo=1.2;pitch=2st")
    assert [c.text() for c in chains] == ["pitch=+2st", "pitch=-2st", "tempo=1.2"]
    assert [c.text() for c in parse_edit_list(["gain=-6dB", "resynth"])] == [
        "gain=-6dB",
        "resynth",
    ]
    with pytest.raises(EditError, match="no edit given"):
        parse_edit_list(" ; ")


def test_pitch_up_four_semitones_keeps_formants(speech: tuple[np.ndarray, int]) -> None:
    x, sr = speech
    y = apply_edit(x, sr, "pitch=+4st")
    m = measure_edit(x, y, sr)
    assert m["f0_shift_st"] == pytest.approx(4.0, abs=0.3)
    assert abs(m["f1_change_pct"]) < 5.0
    assert m["duration_ratio"] == 1.0
    assert check_edit(parse_edit("pitch=+4st"), m) == []


def test_tempo_changes_duration_not_pitch(speech: tuple[np.ndarray, int]) -> None:
    x, sr = speech
    y = apply_edit(x, sr, "tempo=1.25")
    m = measure_edit(x, y, sr)
    assert m["duration_ratio"] == pytest.approx(0.80, abs=0.02)
    assert abs(m["f0_shift_st"]) < 0.3


def test_gain_minus_six_db(speech: tuple[np.ndarray, int]) -> None:
    x, sr = speech
    m = measure_edit(x, apply_edit(x, sr, "gain=-6dB"), sr)
    assert m["rms_change_db"] == pytest.approx(-6.0, abs=0.2)
    assert m["loudness_change_db"] == pytest.approx(-6.0, abs=0.2)


def test_resynth_alone_keeps_f0(speech: tuple[np.ndarray, int]) -> None:
    x, sr = speech
    m = measure_edit(x, apply_edit(x, sr, "resynth"), sr)
    assert abs(m["f0_shift_st"]) < 0.2
    assert m["duration_ratio"] == 1.0


def test_loudness_tilt_formant_and_range_reach_their_targets(
    speech: tuple[np.ndarray, int],
) -> None:
    x, sr = speech
    loud = measure_edit(x, apply_edit(x, sr, "loudness=-30LUFS"), sr)
    assert loud["loudness_lufs"] == pytest.approx(-30.0, abs=0.1)
    tilt = measure_edit(x, apply_edit(x, sr, "tilt=-3dB/oct"), sr)
    assert tilt["tilt_change_db_oct"] == pytest.approx(-3.0, abs=0.3)
    formant = measure_edit(x, apply_edit(x, sr, "formant=1.1"), sr)
    assert formant["f1_change_pct"] == pytest.approx(10.0, abs=5.0)
    assert abs(formant["f0_shift_st"]) < 0.3
    flat = measure_edit(x, apply_edit(x, sr, "pitch-range=0.5"), sr)
    assert flat["f0_range_ratio"] == pytest.approx(0.5, abs=0.25)


def test_voice_quality_edits_leave_pitch_and_length(speech: tuple[np.ndarray, int]) -> None:
    x, sr = speech
    for text in ("jitter=3%", "shimmer=5%", "breathiness=+6dB"):
        y = apply_edit(x, sr, text)
        m = measure_edit(x, y, sr)
        assert abs(m["f0_shift_st"]) < 0.3, text
        assert m["duration_ratio"] == 1.0
        assert not np.allclose(y, apply_edit(x, sr, "resynth"), atol=1e-3), text
    # Praat measures the voice-quality edits in the requested direction
    resynth = apply_edit(x, sr, "resynth")
    jitter = measure_edit(resynth, apply_edit(x, sr, "jitter=4%"), sr)
    assert jitter["jitter_change_pct"] > 0.5
    breathy = measure_edit(resynth, apply_edit(x, sr, "breathiness=+6dB"), sr)
    assert breathy["hnr_change_db"] < 0
    assert check_edit(parse_edit("breathiness=+6dB"), breathy) == []
    assert check_edit(parse_edit("breathiness=-6dB"), breathy) == [
        f"breathiness=-6dB: hnr_change_db moved the wrong way ({breathy['hnr_change_db']:+.3g})"
    ]
    # jitter and shimmer are random but seeded: the same clip gives the same edit
    assert np.array_equal(apply_edit(x, sr, "jitter=3%"), apply_edit(x, sr, "jitter=3%"))


def test_a_reused_world_analysis_gives_the_same_edit(speech: tuple[np.ndarray, int]) -> None:
    x, sr = speech
    analysis = analyse_world(x, sr)
    for text in ("pitch=+3st", "tempo=1.2,formant=1.05", "jitter=2%"):
        assert np.array_equal(apply_edit(x, sr, text, analysis=analysis), apply_edit(x, sr, text))
    # an analysis of another signal is not used by mistake
    other = analyse_world(x[: x.size // 2], sr)
    assert np.array_equal(
        apply_edit(x, sr, "resynth", analysis=other), apply_edit(x, sr, "resynth")
    )


def test_combined_edit_applies_both(speech: tuple[np.ndarray, int]) -> None:
    x, sr = speech
    m = measure_edit(x, apply_edit(x, sr, "pitch=+2st,tempo=1.25,gain=-6dB"), sr)
    assert m["f0_shift_st"] == pytest.approx(2.0, abs=0.3)
    assert m["duration_ratio"] == pytest.approx(0.8, abs=0.02)
    assert m["rms_change_db"] == pytest.approx(-6.0, abs=0.8)  # resynthesis adds ~0.5 dB


def test_check_edit_flags_a_miss_and_a_side_effect() -> None:
    chain = parse_edit("pitch=+4st")
    ok = {"f0_shift_st": 3.9, "f1_change_pct": 1.0, "duration_ratio": 1.0}
    assert check_edit(chain, ok) == []
    missed = check_edit(chain, {**ok, "f0_shift_st": 3.5})
    assert missed == ["pitch=+4st: f0_shift_st is 3.5, requested 4 (tolerance 0.3)"]
    side = check_edit(parse_edit("tempo=1.25"), {"duration_ratio": 0.8, "f0_shift_st": 0.6})
    assert side == ["tempo=1.25 moved f0_shift_st by 0.6 (limit 0.3)"]
    unknown = check_edit(chain, {"f0_shift_st": math.nan})
    assert unknown == ["pitch=+4st: f0_shift_st could not be measured"]


def test_pyin_tracker_agrees_with_praat() -> None:
    x, sr = load_audio(DEMO / CLIPS[1], sr=16000)
    y = apply_edit(x, sr, "pitch=+4st")
    assert measure_edit(x, y, sr, tracker="pyin")["f0_shift_st"] == pytest.approx(4.0, abs=0.3)


def test_praat_engine(speech: tuple[np.ndarray, int]) -> None:
    pytest.importorskip("parselmouth")
    x, sr = speech
    m = measure_edit(x, apply_edit(x, sr, "pitch=+4st", engine="praat"), sr)
    assert m["f0_shift_st"] == pytest.approx(4.0, abs=0.3)
    assert abs(m["f1_change_pct"]) < 5.0
    m = measure_edit(x, apply_edit(x, sr, "tempo=1.25", engine="praat"), sr)
    assert m["duration_ratio"] == pytest.approx(0.8, abs=0.02)
    with pytest.raises(EditError, match="praat engine cannot do jitter"):
        apply_edit(x, sr, "jitter=2%", engine="praat")


def test_unknown_engine_and_bad_signals() -> None:
    x = np.zeros(16000, dtype=np.float32)
    with pytest.raises(EditError, match="unknown edit engine 'psola'"):
        apply_edit(x, 16000, "pitch=+2st", engine="psola")
    with pytest.raises(EditError, match="silent"):
        apply_edit(x, 16000, "loudness=-23LUFS")
    with pytest.raises(EditError, match=r"at least 0\.4 s"):
        apply_edit(x[:1000], 16000, "loudness=-23LUFS")


def test_a_very_short_output_is_measured_as_nan_not_a_crash() -> None:
    """tempo=4 on a 0.12 s clip leaves 30 ms, too short for Praat's pitch analysis."""
    x, sr = load_audio(DEMO / CLIPS[0], sr=16000)
    clip = x[4000 : 4000 + int(0.12 * sr)]
    y = apply_edit(clip, sr, "tempo=4")
    m = measure_edit(clip, y, sr)
    assert m["duration_ratio"] == pytest.approx(0.25, abs=0.01)
    assert math.isnan(m["f0_shift_st"])
    assert check_edit(parse_edit("tempo=4"), m) == []  # duration reached; F0 unknown, no side flag


def test_a_semicolon_in_one_edit_says_how_to_combine() -> None:
    with pytest.raises(EditError) as info:
        parse_edit("pitch=+2st;tempo=1.2")
    assert "';' separates" in str(info.value) and "pitch=+2st,tempo=1.2" in str(info.value)
    # a TOML list item written with ';' is the same list as the --edits flag
    chains = parse_edit_list(["pitch=+2st;tempo=1.2", "gain=-6dB"])
    assert [c.text() for c in chains] == ["pitch=+2st", "tempo=1.2", "gain=-6dB"]


def test_praat_refusal_names_no_flag_of_one_command() -> None:
    """The same refusal is read by `cuelab edit` (--engine), eval (--edit-engine) and TOML."""
    from cuelab.core.audio.edits import check_engine

    with pytest.raises(EditError) as info:
        check_engine("praat", parse_edit("pitch=+2st,jitter=2%"))
    assert str(info.value) == "the praat engine cannot do jitter (only the world engine can)"
