from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cuelab.core.cues.concepts import (
    CONCEPT_DESCRIPTORS,
    compute_concepts,
    concept_scores,
    concepts_for_features,
)
from cuelab.core.cues.extract import extract_signal
from cuelab.core.cues.norms import NormsProfile, build_norms, default_norms
from cuelab.core.cues.voice_quality import DEFAULT_THRESHOLDS, classify_voice_quality
from cuelab.core.errors import NormsError
from tests.core.synth import SR, voiced


def scores_of(x: np.ndarray) -> dict[str, float]:
    feats = extract_signal(x, SR)
    return concepts_for_features(feats).scores


def test_louder_is_higher_energy() -> None:
    quiet, loud = scores_of(voiced(amp=0.05)), scores_of(voiced(amp=0.6))
    assert loud["ENERGY"] > quiet["ENERGY"] + 0.5


def test_higher_f0_is_higher_pitch() -> None:
    low, high = scores_of(voiced(f0=110)), scores_of(voiced(f0=260))
    assert high["PITCH"] > low["PITCH"] + 1.0


def test_more_high_frequency_energy_is_brighter() -> None:
    dark, bright = scores_of(voiced(tilt=2.0)), scores_of(voiced(tilt=0.5))
    assert bright["BRIGHTNESS"] > dark["BRIGHTNESS"] + 0.5


def test_silence_and_noise_are_unvoiced() -> None:
    rng = np.random.default_rng(0)
    silence = (1e-4 * rng.standard_normal(SR)).astype(np.float32)
    noise = (0.2 * rng.standard_normal(SR)).astype(np.float32)
    for x in (silence, noise):
        res = concepts_for_features(extract_signal(x, SR))
        assert res.tokens["VOICE_QUALITY"] == "UNVOICED"
        assert "voiced frames" in res.vq_reason
    res = concepts_for_features(extract_signal(silence, SR))
    assert math.isnan(res.scores["PITCH"])
    assert res.tokens["PITCH"] == "MID"
    assert any("PITCH: undefined" in n for n in res.notes)


def _synthetic_profile(with_gender: bool = True) -> NormsProfile:
    rng = np.random.default_rng(0)
    rows, genders = [], []
    for i in range(60):
        g = "f" if i % 2 else "m"
        f0 = rng.normal(34 if g == "f" else 24, 2.0)  # semitones: women sit higher
        row = {
            name: float(rng.normal(1.0, 0.3))
            for grp in CONCEPT_DESCRIPTORS.values()
            for name, _ in grp
        }
        row["F0semitoneFrom27.5Hz_sma3nz"] = f0
        rows.append(row)
        genders.append(g if with_gender else "")
    return build_norms(rows, genders, label="synthetic")


def test_per_gender_pitch_edges_are_applied() -> None:
    profile = _synthetic_profile()
    assert set(profile.edges["PITCH"]) == {"global", "m", "f"}
    assert set(profile.edges["ENERGY"]) == {"global"}
    desc = {"F0semitoneFrom27.5Hz_sma3nz": 29.0}  # between the two gender means
    as_m = compute_concepts(desc, 0.8, profile, "m")
    as_f = compute_concepts(desc, 0.8, profile, "f")
    unknown = compute_concepts(desc, 0.8, profile, None)
    assert as_m.edges_used["PITCH"] == "m" and as_f.edges_used["PITCH"] == "f"
    assert unknown.edges_used["PITCH"] == "global"
    assert as_m.tokens["PITCH"] == "VERY_HIGH"  # high for a man
    assert as_f.tokens["PITCH"] == "VERY_LOW"  # low for a woman


def test_gender_without_edges_falls_back_to_global_and_says_so() -> None:
    profile = _synthetic_profile(with_gender=False)
    res = compute_concepts({"F0semitoneFrom27.5Hz_sma3nz": 29.0}, 0.8, profile, "f")
    assert res.edges_used["PITCH"] == "global"
    assert any("no 'f' edges" in n for n in res.notes)


def test_bins_follow_quantiles_of_the_norming_set() -> None:
    rng = np.random.default_rng(5)
    norming = [{"Loudness_sma3": float(x)} for x in rng.normal(1.0, 0.3, 2000)]
    profile = build_norms(norming, [""] * len(norming))
    counts: dict[str, int] = {}
    for x in rng.normal(1.0, 0.3, 1000):
        tok = compute_concepts({"Loudness_sma3": float(x)}, 0.8, profile).tokens["ENERGY"]
        counts[tok] = counts.get(tok, 0) + 1
    # the same distribution as the norming set → about 20 % per bin
    assert len(counts) == 5
    assert all(150 < c < 250 for c in counts.values()), counts


def test_concept_score_is_mean_of_signed_robust_z() -> None:
    profile = default_norms()
    desc = {name: profile.descriptors[name].median for name in profile.descriptors}
    st = profile.descriptors["hammarbergIndex_sma3"]
    desc["hammarbergIndex_sma3"] = st.median + 2 * st.iqr  # darker by 2 robust units
    s = concept_scores(desc, profile)
    assert s["BRIGHTNESS"] == pytest.approx(-2 / 4)
    assert s["ENERGY"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("z", "voiced", "token"),
    [
        ({}, 0.05, "UNVOICED"),
        ({"F0semitoneFrom27.5Hz_sma3nz": -1.5, "jitterLocal_sma3nz": 1.5}, 0.6, "CREAKY"),
        (
            {"F0semitoneFrom27.5Hz_sma3nz": 0, "jitterLocal_sma3nz": 2, "HNRdBACF_sma3nz": -2},
            0.6,
            "ROUGH",
        ),
        (
            {"F0semitoneFrom27.5Hz_sma3nz": 0, "logRelF0-H1-H2_sma3nz": 1.5, "HNRdBACF_sma3nz": -1},
            0.6,
            "BREATHY",
        ),
        (
            {
                "F0semitoneFrom27.5Hz_sma3nz": 0,
                "logRelF0-H1-H2_sma3nz": -1.5,
                "logRelF0-H1-A3_sma3nz": -1.5,
            },
            0.6,
            "PRESSED",
        ),
        ({"F0semitoneFrom27.5Hz_sma3nz": 0.1}, 0.6, "MODAL"),
    ],
)
def test_voice_quality_rules(z: dict[str, float], voiced: float, token: str) -> None:
    assert classify_voice_quality(z, voiced, DEFAULT_THRESHOLDS)[0] == token


def test_voice_quality_thresholds_come_from_the_profile() -> None:
    z = {"F0semitoneFrom27.5Hz_sma3nz": 0.0, "logRelF0-H1-H2_sma3nz": 0.6, "HNRdBACF_sma3nz": -1}
    assert classify_voice_quality(z, 0.6)[0] == "MODAL"
    assert classify_voice_quality(z, 0.6, {"breathy_h1h2_z": 0.5})[0] == "BREATHY"


def test_profile_round_trip_and_validation(tmp_path) -> None:
    profile = _synthetic_profile()
    path = profile.save(tmp_path / "n.json")
    again = NormsProfile.load(path)
    assert again.edges == profile.edges and again.sha256 == profile.sha256
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(NormsError, match="schema version 99"):
        NormsProfile.load(bad)
    data["schema_version"] = 1
    data["edges"]["ENERGY"]["global"] = [3, 2, 1, 0]
    bad.write_text(json.dumps(data))
    with pytest.raises(NormsError, match="ENERGY/global edges"):
        NormsProfile.load(bad)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(NormsError, match=r"junk\.json: the norms profile is not valid JSON"):
        NormsProfile.load(tmp_path / "junk.json")
    with pytest.raises(NormsError, match="not found"):
        NormsProfile.load(tmp_path / "missing.json")


def test_shipped_default_profile_is_labelled_and_complete() -> None:
    p = default_norms()
    assert "demo" in p.label.lower() and "synthetic" in p.label.lower()
    assert p.n_clips >= 48 and set(p.n_clips_by_gender) == {"m", "f"}
    assert set(p.edges["PITCH"]) == {"global", "m", "f"}
    assert len(p.source_manifest_sha256) == 64
    assert p.feature_config["feature_set"] == "eGeMAPSv02"


def test_profile_save_to_a_folder_is_one_error_and_leaves_no_temp_file(tmp_path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(NormsError, match="is a folder"):
        _synthetic_profile().save(target)
    assert list(tmp_path.iterdir()) == [target] and not any(target.iterdir())


def test_profile_save_unwritable_parent_is_a_norms_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NormsError, match="cannot write"):
        _synthetic_profile().save(blocker / "n.json")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("descriptors", []),
        lambda d: d.__setitem__("edges", "x"),
        lambda d: d["edges"]["PITCH"].__setitem__("global", [float("nan"), 0.0, 1.0, 2.0]),
        lambda d: d.__setitem__("n_clips", "many"),
        lambda d: d.__setitem__("voice_quality", {"creaky_f0_z": "low"}),
    ],
)
def test_malformed_profiles_are_norms_errors(tmp_path, mutate) -> None:
    data = _synthetic_profile().to_json()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(NormsError, match=r"bad\.json"):
        NormsProfile.load(path)
