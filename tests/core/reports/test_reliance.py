"""Reliance and calibration of a demo run recomputed independently with numpy and scipy."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from cuelab.cli import main
from cuelab.core.reports.build import build_report
from cuelab.core.runs import run_eval
from tests.core.reports.test_analysis import np_uar
from tests.core.runs.test_emotion_runs import LABELS, config, make_manifest
from tests.helpers import num
from tests.helpers import read_csv as read

MODELS = ["reference", "oracle:-"]
B = 200


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = make_manifest(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("runs") / "r"
    run_eval(config(manifest, out, models=MODELS, seeds=[0, 1], bootstrap=B))
    assert main(["report", str(out), "--calibrate", "batch"]) == 0
    return out


def table(run: Path) -> dict[tuple[str, str, str], dict[str, dict[str, str]]]:
    out: dict[tuple[str, str, str], dict[str, dict[str, str]]] = {}
    for r in read(run / "predictions.csv"):
        out.setdefault((r["model"], r["condition"], r["seed"]), {})[r["utt_id"]] = r
    return out


def probs(rows: dict[str, dict[str, str]], ids: list[str]) -> np.ndarray:
    return np.array([[float(rows[u][f"p_{lab}"]) for lab in LABELS] for u in ids])


def test_swap_rate_js_helped_hurt_against_correct(run: Path) -> None:
    g = table(run)
    rel = read(run / "reliance.csv")
    assert len(rel) == len(g)
    for r in rel:
        ref, other = g[(r["model"], "correct", "")], g[(r["model"], r["condition"], r["seed"])]
        ids = sorted(ref)
        a = np.array([ref[u]["prediction"] for u in ids])
        b = np.array([other[u]["prediction"] for u in ids])
        y = np.array([ref[u]["label"] for u in ids])
        assert r["reference"] == "correct" and int(r["n"]) == 16
        assert num(r["swap_rate"]) == pytest.approx(np.mean(a != b), abs=1e-6)
        assert int(r["helped"]) == np.sum((a != y) & (b == y))
        assert int(r["hurt"]) == np.sum((a == y) & (b != y))
        pa, pb = probs(ref, ids), probs(other, ids)
        js = np.mean([jensenshannon(p, q, base=2) for p, q in zip(pa, pb)])
        assert num(r["js_mean"]) == pytest.approx(js, abs=1e-6)
    swaps = [num(r["swap_rate"]) for r in rel if r["model"] == "reference"]
    assert max(swaps) > 0  # the reference model does react to its tokens


def test_frequency_baseline_is_the_expected_score_of_a_frequency_guesser(run: Path) -> None:
    g = table(run)
    rng = np.random.default_rng(1)
    for r in read(run / "reliance.csv"):
        rows = g[(r["model"], r["condition"], r["seed"])]
        y = np.array([rows[u]["label"] for u in sorted(rows)])
        pred = [rows[u]["prediction"] or "<unparsed>" for u in sorted(rows)]
        freq = Counter(pred)
        answers = sorted(freq)
        share = np.array([freq[a] / len(pred) for a in answers])
        draws = rng.choice(answers, size=(4000, len(y)), p=share)
        sim_uar = np.mean([np_uar(y, d) for d in draws[:400]])
        sim_wa = np.mean(draws == y[None, :])
        assert num(r["freq_baseline_uar"]) == pytest.approx(sim_uar, abs=0.02)
        assert num(r["freq_baseline_wa"]) == pytest.approx(sim_wa, abs=0.01)


def test_token_reliance_index_with_its_paired_bootstrap(run: Path) -> None:
    g = table(run)
    row = next(r for r in read(run / "reliance_index.csv") if r["model"] == "reference")
    parts = [g[("reference", c, "")] for c in ("audio-only", "correct", "conflict")]
    ids = sorted(parts[0])
    y = np.array([parts[0][u]["label"] for u in ids])
    spk = [parts[0][u]["speaker"] for u in ids]
    a, c, f = (np.array([p[u]["prediction"] for u in ids]) for p in parts)

    def tri(idx: np.ndarray) -> float:
        gain = np_uar(y[idx], c[idx]) - np_uar(y[idx], a[idx])
        return (np_uar(y[idx], c[idx]) - np_uar(y[idx], f[idx])) / gain if gain > 0 else np.nan

    every = np.arange(len(ids))
    gain = np_uar(y, c) - np_uar(y, a)
    assert num(row["gain"]) == pytest.approx(gain, abs=1e-6)
    assert num(row["loss"]) == pytest.approx(np_uar(y, c) - np_uar(y, f), abs=1e-6)
    speakers = list(dict.fromkeys(spk))
    members = [np.flatnonzero(np.array(spk) == s) for s in speakers]
    rng = np.random.default_rng(0)
    reps = np.array(
        [
            tri(np.concatenate([members[i] for i in rng.integers(0, len(speakers), len(speakers))]))
            for _ in range(B)
        ]
    )
    kept = reps[~np.isnan(reps)]
    assert int(row["replicates_defined"]) == kept.size
    if gain > 0:
        assert num(row["tri"]) == pytest.approx(tri(every), abs=1e-6)
        low, high = np.percentile(kept, [2.5, 97.5])
        assert (num(row["tri_ci_low"]), num(row["tri_ci_high"])) == pytest.approx(
            (low, high), abs=1e-6
        )
    else:
        assert row["tri"] == row["tri_ci_low"] == row["tri_ci_high"] == ""
        assert row["note"].startswith("undefined")


def np_ece(p: np.ndarray, y: np.ndarray) -> float:
    conf, hit = p.max(axis=1), (np.array(LABELS)[p.argmax(axis=1)] == y)
    edges = np.linspace(0, 1, 16)
    which = np.digitize(conf, edges[1:-1], right=True)
    return float(
        sum(
            np.mean(which == b) * abs(hit[which == b].mean() - conf[which == b].mean())
            for b in range(15)
            if np.any(which == b)
        )
    )


def test_ece_brier_nll_and_batch_calibration(run: Path) -> None:
    g = table(run)
    cal = read(run / "calibration.csv")
    assert {r["calibration"] for r in cal} == {"none", "batch"}
    for r in cal:
        rows = g[(r["model"], r["condition"], r["seed"])]
        ids = sorted(rows)
        y = np.array([rows[u]["label"] for u in ids])
        p = probs(rows, ids)
        p = p / p.sum(axis=1, keepdims=True)
        if r["calibration"] == "batch":
            prior = p.mean(axis=0)
            p = p / prior
            p = p / p.sum(axis=1, keepdims=True)
            want = ";".join(f"{lab}={v:.6g}" for lab, v in zip(LABELS, prior))
            assert r["content_free"] == want
        onehot = (y[:, None] == np.array(LABELS)[None, :]).astype(float)
        assert num(r["uar"]) == pytest.approx(np_uar(y, np.array(LABELS)[p.argmax(1)]), abs=1e-6)
        assert num(r["ece"]) == pytest.approx(np_ece(p, y), abs=1e-6)
        assert num(r["brier"]) == pytest.approx(np.mean(((p - onehot) ** 2).sum(1)), abs=1e-6)
        nll = np.mean(-np.log(np.maximum((p * onehot).sum(1), 1e-12)))
        assert num(r["nll"]) == pytest.approx(nll, abs=1e-6)
    assert (run / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_rows_without_probabilities_say_na(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "gen"
    shutil.copytree(run, copy)
    with open(copy / "predictions.csv", encoding="utf-8", newline="") as fh:
        data = list(csv.reader(fh))
    cols = [data[0].index(f"p_{lab}") for lab in LABELS]
    for r in data[1:]:
        if r[3] == "reference" and r[4] == "conflict":  # as a generated-and-parsed answer
            for i in cols:
                r[i] = ""
    with open(copy / "predictions.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(data)
    build_report(copy, plots=False)
    rows = [r for r in read(copy / "calibration.csv") if r["model"] == "reference"]
    mine = [r for r in rows if r["condition"] == "conflict"]
    assert [r["calibration"] for r in mine] == ["none", "batch"]  # run.json kept the choice
    assert all(r[k] == "n/a" for r in mine for k in ("ece", "brier", "nll", "content_free"))
    assert mine[0]["uar"] != "n/a" and mine[1]["uar"] == "n/a"
    assert all(r["ece"] != "n/a" for r in rows if r["condition"] != "conflict")


def test_contextual_calibration_divides_by_the_content_free_score(
    run: Path, tmp_path: Path
) -> None:
    from cuelab.core.models.base import Clip, LoadOptions
    from cuelab.core.models.registry import load_model
    from cuelab.core.runs.content_free import content_free_text
    from cuelab.core.tasks.prompts import load_task

    copy = tmp_path / "ctx"
    shutil.copytree(run, copy)
    assert main(["report", str(copy), "--no-plots", "--calibrate", "batch,contextual"]) == 0
    cf = {(r["model"], r["condition"]): r for r in read(copy / "content_free.csv")}
    assert cf[("reference", "audio-only")]["tokens"] == ""
    # the reference model parses its tokens and refuses N/A values: silence without tokens
    assert cf[("reference", "correct")]["tokens"] == ""
    assert "N/A token text refused" in cf[("reference", "correct")]["note"]
    assert content_free_text("ENERGY=HIGH PITCH=LOW") == "ENERGY=N/A PITCH=N/A"
    text = None
    assert cf[("oracle:-", "correct")]["p_angry"] == "" and cf[("oracle:-", "correct")]["note"]
    # the recorded distribution is the model's score of silence with the N/A text
    seconds = float(cf[("reference", "correct")]["seconds"])
    model = load_model("reference", LoadOptions())
    silence = Clip(np.zeros(round(seconds * model.sample_rate), np.float32), model.sample_rate)
    (pred,) = model.score_labels(silence, load_task("ser", LABELS), LABELS, [text])
    for lab in LABELS:
        assert num(cf[("reference", "correct")][f"p_{lab}"]) == pytest.approx(
            pred.probs[lab], abs=1e-6
        )
    g = table(copy)
    cal = [r for r in read(copy / "calibration.csv") if r["calibration"] == "contextual"]
    assert {r["model"] for r in cal} == {"reference", "oracle:-"}
    for r in cal:
        if r["model"] == "oracle:-":
            assert r["uar"] == r["ece"] == "n/a"
            continue
        rows = g[(r["model"], r["condition"], r["seed"])]
        ids = sorted(rows)
        y = np.array([rows[u]["label"] for u in ids])
        dist = np.array([float(cf[(r["model"], r["condition"])][f"p_{lab}"]) for lab in LABELS])
        p = probs(rows, ids)
        p = p / p.sum(axis=1, keepdims=True) / (dist / dist.sum())
        p = p / p.sum(axis=1, keepdims=True)
        assert num(r["uar"]) == pytest.approx(np_uar(y, np.array(LABELS)[p.argmax(1)]), abs=1e-6)
        assert num(r["ece"]) == pytest.approx(np_ece(p, y), abs=1e-6)
    import json

    assert json.loads((copy / "run.json").read_text())["analysis"]["calibrate"] == [
        "batch",
        "contextual",
    ]
