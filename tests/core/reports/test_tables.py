"""tables/ of a demo run match the long-form CSVs cell for cell (CSV, Markdown and LaTeX)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cuelab.cli import main
from cuelab.core.reports.build import build_report
from cuelab.core.reports.tables import sseu_table
from cuelab.core.runs import run_eval
from cuelab.core.runs.csvio import write_csv
from tests.core.runs.test_emotion_runs import config, make_manifest
from tests.helpers import read_csv as read

MODELS = ["reference", "oracle:-"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = make_manifest(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("runs") / "r"
    run_eval(config(manifest, out, models=MODELS, seeds=[0, 1]))
    assert main(["report", str(out), "--tables"]) == 0
    return out


def md_rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        [c.strip() for c in line.strip("|").split(" | ")] for line in lines if line[:4] != "|---"
    ]


def test_emotion_table_matches_summary_and_tests(run: Path) -> None:
    summary = {(r["model"], r["condition"], r["seed"]): r for r in read(run / "summary.csv")}
    tests = {(r["model"], r["condition_a"], r["condition_b"], r["seed"]): r
             for r in read(run / "tests.csv")}  # fmt: skip
    table = read(run / "tables" / "emotion.csv")
    assert [r["model"] for r in table] == MODELS
    shown = md_rows(run / "tables" / "emotion.md")
    head = shown[0]
    assert head[:5] == ["Model", "Audio-only UAR [CI]", "+Tokens UAR [CI]", "Δ [CI]", "McNemar p"]
    for row, show in zip(table, shown[1:]):
        m = row["model"]
        audio, tok = summary[(m, "audio-only", "")], summary[(m, "correct", "")]
        assert [row["audio_only_uar"], row["audio_only_ci_low"], row["audio_only_ci_high"]] == [
            audio["uar"], audio["uar_ci_low"], audio["uar_ci_high"]]  # fmt: skip
        assert [row["tokens_uar"], row["delta_uar"], row["delta_ci_high"]] == [
            tok["uar"], tok["delta_uar"], tok["delta_ci_high"]]  # fmt: skip
        assert row["p_mcnemar"] == tests[(m, "audio-only", "correct", "")]["p_mcnemar"]
        for cond, seed in (("conflict", ""), ("shuffle", "pooled"), ("corrupt:1", "pooled")):
            want = summary[(m, cond, "mean" if seed else "")]["uar"]
            assert row[f"{cond}_uar"] == want
            assert row[f"{cond}_p_holm_vs_correct"] == tests[(m, "correct", cond, seed)]["p_holm"]
            assert (
                row[f"{cond}_p_holm_vs_audio_only"]
                == tests[(m, "audio-only", cond, seed)]["p_holm"]
            )
            k = head.index(f"{cond} UAR")
            assert show[k] == f"{100 * float(want):.1f}"
            p = tests[(m, "correct", cond, seed)]["p_holm"]
            assert show[k + 1] == ("" if p == "" else f"{float(p):.3g}")
        assert "corrupt:0.2_uar" not in row  # only the strongest corruption is in the families
        pct = [f"{100 * float(tok[c]):.1f}" for c in ("uar", "uar_ci_low", "uar_ci_high")]
        assert show[2] == f"{pct[0]} [{pct[1]}, {pct[2]}]"
    tex = (run / "tables" / "emotion.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "oracle:-" in tex and "corrupt:1 UAR" in tex
    png = run / "tables" / "token_distribution.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_token_counts_per_class_come_from_the_correct_rows(run: Path) -> None:
    from cuelab.core.reports.tables import token_counts
    from cuelab.core.runs import RunRecord

    counts = token_counts(run, RunRecord.from_json(json.loads((run / "run.json").read_text())))
    rows = [r for r in read(run / "predictions.csv")
            if r["condition"] == "correct" and r["model"] == "reference"]  # fmt: skip
    for concept, by_label in counts.items():
        for label, levels in by_label.items():
            want: dict[str, int] = {}
            for r in rows:
                if r["label"] != label:
                    continue
                level = dict(w.split("=") for w in r["tokens"].split())[concept]
                want[level] = want.get(level, 0) + 1
            assert levels == want
    assert sum(sum(v.values()) for v in counts["PITCH"].values()) == 16


def test_eval_writes_tables_by_default_and_report_only_when_asked(
    run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ev"
    manifest = make_manifest(tmp_path / "d")
    args = ["eval", "--manifest", str(manifest), "--model", "oracle:-", "--conditions",
            "audio-only,correct", "--out", str(out), "--bootstrap", "20", "--no-plots"]  # fmt: skip
    assert main(args) == 0
    assert (out / "tables" / "emotion.csv").is_file()
    again = tmp_path / "again"
    args[args.index(str(out))] = str(again)
    assert main([*args, "--no-tables"]) == 0
    assert not (again / "tables").exists()
    build_report(again, plots=False)
    assert not (again / "tables").exists()


def test_sseu_table_columns_average_and_mean_over_finite_snrs(tmp_path: Path) -> None:
    snrs = ["-inf", "-10", "-5", "0", "5", "10", "inf"]
    rng = np.random.default_rng(0)
    header = ["model", "mode", "snr_db", "n", "n_seeds", "wer", "wer_std", "macc", "macc_std",
              "map", "map_std"]  # fmt: skip
    rows = []
    for mode in ("independent", "joint"):
        for s in snrs:
            vals = [f"{v:.6g}" for v in rng.uniform(0, 100, 6)]
            if s == "-inf":
                vals[0] = vals[1] = ""  # no speech: no WER
            if s == "inf":
                vals[2:] = ["", "", "", ""]
            rows.append(["m", mode, s, 8, 3, *vals])
    write_csv(tmp_path / "summary.csv", header, rows)
    csv_header, table, shown, display = sseu_table(tmp_path)
    long = read(tmp_path / "summary.csv")
    for row, show in zip(table, display):
        cell = dict(zip(csv_header, row))
        mine = [r for r in long if r["mode"] == cell["mode"]]
        for metric in ("wer", "macc", "map"):
            values = {r["snr_db"]: r[metric] for r in mine}
            for s in snrs:
                assert cell[f"{metric}@{s}"] == values[s]
                assert cell[f"{metric}_std@{s}"] == next(
                    r[f"{metric}_std"] for r in mine if r["snr_db"] == s
                )
            defined = [float(v) for v in values.values() if v]
            finite = [float(values[s]) for s in snrs[1:-1]]
            assert float(cell[f"{metric}_average"]) == pytest.approx(np.mean(defined), abs=1e-4)
            assert float(cell[f"{metric}_mean5"]) == pytest.approx(np.mean(finite), abs=1e-4)
        k = shown.index("WER 0 dB")
        r0 = next(r for r in mine if r["snr_db"] == "0")
        assert show[k] == f"{float(r0['wer']):.1f} ± {float(r0['wer_std']):.1f}"
    assert "WER Mean5" in shown and "mAP Average" in shown


def test_an_sseu_run_gets_its_table_from_its_summary(tmp_path: Path) -> None:
    from tests.core.runs.test_sseu_runs import CLIPS, build_set
    from tests.core.runs.test_sseu_runs import config as sseu_config

    manifest = build_set(tmp_path / "set", list(CLIPS[:2]))
    out = tmp_path / "sseu"
    run_eval(sseu_config(manifest, out, seeds=[0], cot=False))
    assert main(["report", str(out), "--no-plots", "--tables"]) == 0
    table = read(out / "tables" / "sseu.csv")
    summary = read(out / "summary.csv")
    assert [(r["model"], r["mode"]) for r in table] == [("oracle:-", "independent"),
                                                        ("oracle:-", "joint")]  # fmt: skip
    for row in table:
        for s in summary:
            if (s["model"], s["mode"]) == (row["model"], row["mode"]):
                for metric in ("wer", "macc", "map"):
                    assert row[f"{metric}@{s['snr_db']}"] == s[metric]
        assert row["wer_average"] == "0" and row["macc_mean5"] == "100"  # the oracle's bounds
    tex = (out / "tables" / "sseu.tex").read_text()
    assert "\\toprule" in tex and "WER Average" in tex


def test_latex_tables_are_ascii_so_pdflatex_takes_them(run: Path) -> None:
    # pdflatex stops on a raw Δ ("Unicode character not set up for use with LaTeX")
    from cuelab.core.reports.tables import latex

    tex = (run / "tables" / "emotion.tex").read_text(encoding="utf-8")
    assert tex.isascii(), [c for c in tex if not c.isascii()]
    assert "$\\Delta$ [CI]" in tex
    cell = latex(["Δ", "WER 0 dB"], [["1.0 ± 0.2", "a_b & 50%"]], "c")
    assert cell.isascii() and "1.0 $\\pm$ 0.2" in cell and "a\\_b \\& 50\\%" in cell


def test_the_latex_caption_names_the_holm_rule_the_report_used(run: Path, tmp_path: Path) -> None:
    import shutil

    assert "Holm within the paper's families" in (run / "tables" / "emotion.tex").read_text()
    copy = tmp_path / "all"
    shutil.copytree(run, copy)
    assert main(["report", str(copy), "--no-plots", "--tables", "--holm", "all"]) == 0
    tex = (copy / "tables" / "emotion.tex").read_text()
    assert "Holm over all of a model's per-seed tests" in tex and "within the paper" not in tex
