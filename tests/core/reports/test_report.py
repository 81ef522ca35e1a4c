"""Report tables against the metrics functions, Holm over the run, CSV safety, plots."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from cuelab.cli import main
from cuelab.core import metrics
from cuelab.core.models.registry import DEMO_REFERENCE
from cuelab.core.reports.build import build_report
from cuelab.core.runs import run_eval
from cuelab.core.runs.csvio import neutralise, restore, write_csv
from tests.core.runs.test_emotion_runs import LABELS, config, make_manifest
from tests.helpers import num
from tests.helpers import read_csv as read

#: The shipped reference model twice (under two specs) and the oracle: two Holm families.
MODEL_SPECS = {"reference": "reference", "reference2": f"reference:{DEMO_REFERENCE}"}
MODELS = [*MODEL_SPECS.values(), "oracle:-"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = make_manifest(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("runs") / "r"
    run_eval(config(manifest, out, models=MODELS, seeds=[0, 1, 2]))
    build_report(out)
    return out


def groups(run: Path) -> dict[tuple[str, str, str], list[dict[str, str]]]:
    out: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in read(run / "predictions.csv"):
        out.setdefault((r["model"], r["condition"], r["seed"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["utt_id"]) for k, v in out.items()}


def test_summary_equals_the_metrics_recomputed_by_hand(run: Path) -> None:
    summary = {(r["model"], r["condition"], r["seed"]): r for r in read(run / "summary.csv")}
    by_group = groups(run)
    assert set(by_group) == {k for k in summary if k[2] != "mean"}
    for key, items in by_group.items():
        y = [r["label"] for r in items]
        p = [r["prediction"] or None for r in items]
        spk = [r["speaker"] for r in items]
        row = summary[key]
        t_idx, p_idx = metrics.encode_labels(y, p)
        ci = metrics.bootstrap_ci(metrics.uar, t_idx, p_idx, groups=spk, n_resamples=200, seed=0)
        assert int(row["n"]) == 16
        assert num(row["uar"]) == pytest.approx(metrics.uar(y, p), abs=1e-6)
        assert num(row["wa"]) == pytest.approx(metrics.weighted_accuracy(y, p), abs=1e-6)
        assert (num(row["uar_ci_low"]), num(row["uar_ci_high"])) == pytest.approx(
            (ci.low, ci.high), abs=1e-6
        )
        recalls = metrics.per_class_recall(y, p, LABELS)
        for lab in LABELS:
            assert num(row[f"recall_{lab}"]) == pytest.approx(recalls[lab], abs=1e-6)
    for (model, cond, seed), row in summary.items():
        if seed != "mean":
            continue
        agg = metrics.aggregate_seeds([num(summary[(model, cond, s)]["uar"]) for s in "012"])
        assert num(row["uar"]) == pytest.approx(agg.mean, abs=1e-6)
        assert num(row["uar_ci_low"]) == pytest.approx(max(0.0, agg.ci_low), abs=1e-6)
        assert num(row["uar_ci_high"]) == pytest.approx(min(1.0, agg.ci_high), abs=1e-6)
    means = {(m, c) for m, c, s in summary if s == "mean"}
    assert means == {
        (m, c) for m in MODELS for c in ("shuffle", "corrupt:0.2", "corrupt:0.6", "corrupt:1")
    }
    oracle = [r for k, r in summary.items() if k[0] == "oracle:-" and k[2] != "mean"]
    assert all(r["uar_ci_low"] == r["uar_ci_high"] == "1" for r in oracle)


def test_mcnemar_per_condition_and_seed_with_holm_per_model(run: Path, tmp_path: Path) -> None:
    from statsmodels.stats.multitest import multipletests

    # --holm all: one family per model, the per-seed tests CueLab always wrote
    copy = tmp_path / "all"
    shutil.copytree(run, copy)
    assert main(["report", str(copy), "--no-plots", "--holm", "all"]) == 0
    tests = [t for t in read(copy / "tests.csv") if t["seed"] != "pooled"]
    by_group = groups(run)
    for t in tests:
        a = by_group[(t["model"], t["condition_a"], "")]
        b = by_group[(t["model"], t["condition_b"], t["seed"])]
        res = metrics.mcnemar_exact(
            [r["prediction"] == r["label"] for r in a], [r["prediction"] == r["label"] for r in b]
        )
        assert (int(t["n01"]), int(t["n10"])) == (res.n01, res.n10)
        assert num(t["p_mcnemar"]) == pytest.approx(res.p_value, abs=1e-6)
    # Holm's family is one model's tests; the oracle is no family
    for model in ("reference", "reference2"):
        mine = [t for t in tests if t["model"] == MODEL_SPECS[model]]
        want = multipletests([num(t["p_mcnemar"]) for t in mine], method="holm")[1]
        assert [num(t["p_holm"]) for t in mine] == pytest.approx(list(want), abs=1e-9)
    assert all(t["p_holm"] == "" for t in tests if t["model"] == "oracle:-")
    pairs = {
        (t["condition_a"], t["condition_b"], t["seed"]) for t in tests if t["model"] == "reference"
    }
    assert ("audio-only", "correct", "") in pairs and ("correct", "shuffle", "2") in pairs
    assert ("correct", "audio-only", "") not in pairs and ("correct", "correct", "") not in pairs
    # vs audio-only: correct, conflict, 4 random conditions x 3 seeds = 14; vs correct: 1 + 12 = 13
    assert len(pairs) == 27 and len(tests) == 3 * 27
    assert {t["model"] for t in tests} == set(MODELS)


def test_adding_a_model_leaves_another_model_s_p_holm_alone(run: Path, tmp_path: Path) -> None:
    import json

    alone = tmp_path / "alone"
    shutil.copytree(run, alone)
    assert main(["report", str(alone), "--no-plots", "--holm", "all"]) == 0
    full = read(alone / "tests.csv")
    rows = read(alone / "predictions.csv")
    with open(alone / "predictions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["model"] == "reference")
    record = json.loads((alone / "run.json").read_text())
    record["config"]["models"] = ["reference"]
    (alone / "run.json").write_text(json.dumps(record))
    build_report(alone, plots=False)
    before = {(t["condition_a"], t["condition_b"], t["seed"]): t["p_holm"]
              for t in full if t["model"] == "reference" and t["seed"] != "pooled"}  # fmt: skip
    after = {(t["condition_a"], t["condition_b"], t["seed"]): t["p_holm"]
             for t in read(alone / "tests.csv") if t["seed"] != "pooled"}  # fmt: skip
    assert after == before and len(after) == 27


def test_spearman_and_confusion(run: Path) -> None:
    summary = {(r["model"], r["condition"], r["seed"]): r for r in read(run / "summary.csv")}
    spear = {r["model"]: r for r in read(run / "spearman.csv") if r["variant"] == "per-seed"}
    levels = [0.0] + [p for p in (0.2, 0.6, 1.0) for _ in range(3)]
    values = [num(summary[("reference", "correct", "")]["uar"])] + [
        num(summary[("reference", f"corrupt:{p:g}", s)]["uar"])
        for p in (0.2, 0.6, 1.0)
        for s in "012"
    ]
    res = metrics.spearman(levels, values)
    assert num(spear["reference"]["rho"]) == pytest.approx(res.rho, abs=1e-6)
    assert num(spear["reference"]["p"]) == pytest.approx(res.p_value, abs=1e-6)
    assert spear["reference"]["levels"] == "0;0.2;0.6;1" and spear["reference"]["n_points"] == "10"
    assert spear["oracle:-"]["rho"] == ""  # constant UAR: undefined, not 0
    conf = read(run / "confusion.csv")
    by_group = groups(run)
    for key, items in by_group.items():
        mat = metrics.confusion_matrix(
            [r["label"] for r in items], [r["prediction"] or None for r in items], LABELS
        )
        cells = [r for r in conf if (r["model"], r["condition"], r["seed"]) == key]
        got = np.zeros_like(mat)
        for c in cells:
            got[LABELS.index(c["label"]), [*LABELS, "unparsed"].index(c["prediction"])] = int(
                c["count"]
            )
        assert (got == mat).all()


def test_unparsed_answers_are_wrong_and_counted(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "u"
    shutil.copytree(run, copy)
    with open(copy / "predictions.csv", encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    col = table[0].index("prediction")
    hits = [r for r in table[1:] if r[3] == "oracle:-" and r[4] == "conflict"][:3]
    for r in hits:
        r[col] = ""  # as an adapter writes an answer that named no label
    with open(copy / "predictions.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(table)
    assert main(["report", str(copy), "--no-plots"]) == 0
    row = next(
        r
        for r in read(copy / "summary.csv")
        if r["model"] == "oracle:-" and r["condition"] == "conflict"
    )
    assert row["unparsed"] == "3" and num(row["wa"]) == pytest.approx(13 / 16)
    conf = [
        r
        for r in read(copy / "confusion.csv")
        if r["model"] == "oracle:-" and r["condition"] == "conflict"
    ]
    assert sum(int(r["count"]) for r in conf if r["prediction"] == "unparsed") == 3


def test_report_rebuilds_the_same_tables_and_plots(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again"
    shutil.copytree(run, copy)
    names = ["summary.csv", "tests.csv", "confusion.csv", "spearman.csv", "reliance.csv",
             "reliance_index.csv", "calibration.csv"]  # fmt: skip
    for name in names:
        (copy / name).unlink()
    for png in copy.glob("*.png"):
        png.unlink()
    assert main(["report", str(copy)]) == 0  # the tables only, unless --plots is asked
    assert not list(copy.glob("*.png"))
    assert main(["report", str(copy), "--plots"]) == 0
    for name in names:
        assert (copy / name).read_text() == (run / name).read_text()
    pngs = sorted(p.name for p in copy.glob("*.png"))
    assert pngs == [
        "confusion_oracle_-.png", "confusion_reference.png",
        "confusion_reference_demo-reference.png", "reliability.png", "token_gain.png",
        "uar_vs_corruption.png",
    ]  # fmt: skip
    assert all((copy / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_formula_cells_are_neutralised(tmp_path: Path) -> None:
    evil = {"angry": "=SUM(A1)", "happy": "@happy", "neutral": "+neutral", "sad": "sad"}
    manifest = make_manifest(tmp_path / "data", label_map=evil)
    text = manifest.read_text().replace(",n0\n", ',=HYPERLINK("x")\n')
    manifest.write_text(text)
    out = tmp_path / "run"
    run_eval(config(manifest, out, models=["oracle:-"], conditions="audio-only,correct"))
    build_report(out, plots=False)
    raw = (out / "predictions.csv").read_text()
    assert "'=SUM(A1)" in raw and "'@happy" in raw and "'+neutral" in raw
    assert "'=HYPERLINK" in raw.replace('"', "")
    for name in ("predictions.csv", "summary.csv", "tests.csv", "confusion.csv"):
        for row in csv.reader((out / name).read_text().splitlines()):
            assert not any(c[:1] in "=+@\t\r" for c in row if c), (name, row)
            assert not any(c.startswith("-") and not _number(c) for c in row), (name, row)
    conf = read(out / "confusion.csv")
    assert {"'=SUM(A1)", "'@happy", "'+neutral", "sad"} <= {r["label"] for r in conf}
    summary = read(out / "summary.csv")
    assert all(r["uar"] == "1" for r in summary)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+2", "'=1+2"), ("+x", "'+x"), ("-x", "'-x"), ("@x", "'@x"), ("\tx", "'\tx"),
        ("\rx", "'\rx"), ("-", "'-"), ("-0.5", "-0.5"), ("+3", "+3"), ("1e-3", "1e-3"),
        ("plain", "plain"), ("", ""), ("'=x", "''=x"), ("'plain", "'plain"), ("''=x", "'''=x"),
    ],
)  # fmt: skip
def test_neutralise_is_reversible(cell: str, written: str) -> None:
    assert neutralise(cell) == written
    assert restore(neutralise(cell)) == cell


def test_write_csv_is_atomic_and_safe(tmp_path: Path) -> None:
    target = tmp_path / "t.csv"
    write_csv(target, ["a", "b"], [["=x", 1.5], ["-2", "y"]])
    assert target.read_text() == "a,b\n'=x,1.5\n-2,y\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    with pytest.raises(TypeError):
        write_csv(target, ["a"], [[object.__new__(_Bad)]])
    assert target.read_text() == "a,b\n'=x,1.5\n-2,y\n"  # the old table survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


class _Bad:
    def __str__(self) -> str:
        raise TypeError("cannot format")


def test_a_row_torn_inside_its_last_cell_is_not_complete(tmp_path) -> None:
    from cuelab.core.runs.csvio import read_complete_rows

    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n1,hello\n2,wor")
    header, rows, good = read_complete_rows(path)
    assert header == ["a", "b"] and rows == [["1", "hello"]]
    assert good == len(b"a,b\n1,hello\n")
    path.write_bytes(b'a,b\n1,"two\nlines"\n2,"torn\nquo')
    assert read_complete_rows(path)[1] == [["1", "two\nlines"]]


def test_cells_with_a_bare_carriage_return_read_back(tmp_path) -> None:
    from cuelab.core.runs.csvio import format_row, read_complete_rows

    path = tmp_path / "t.csv"
    rows = [["a", "b"], ["1", "model said\rthis"], ["2", "x\r\ny"], ["3", "plain"]]
    path.write_text("".join(format_row(r) for r in rows), encoding="utf-8", newline="")
    header, got, _ = read_complete_rows(path)
    assert header == rows[0] and got == rows[1:]


def test_summary_flags_few_speakers_and_reports_what_each_condition_changed(run: Path) -> None:
    import json

    record = json.loads((run / "run.json").read_text())
    summary = {(r["model"], r["condition"], r["seed"]): r for r in read(run / "summary.csv")}
    for (_model, cond, seed), row in summary.items():
        assert row["n_speakers"] == "4"  # four speakers: fewer than 5, so flagged
        if seed != "mean":
            assert "only 4 speaker(s)" in row["ci_note"]
        if cond == "audio-only":
            assert row["change_rate"] == row["same_tokens"] == ""
            continue
        stats = record["interventions"][cond]
        seeds = list(stats) if seed == "mean" else [seed]
        want = np.mean([stats[s]["change_rate"] for s in seeds])
        assert num(row["change_rate"]) == pytest.approx(want, abs=1e-6)
    assert num(summary[("reference", "correct", "")]["change_rate"]) == 0.0
    # corrupt:1 redraws every position from the whole vocabulary: about 1 - 1/|V| changes
    full = num(summary[("reference", "corrupt:1", "mean")]["change_rate"])
    assert 0.6 < full < 0.95
