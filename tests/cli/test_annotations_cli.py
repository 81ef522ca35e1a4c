"""``cuelab annotations agreement``: the interface outside tests rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.datasets import read_manifest
from cuelab.core.datasets.annotations import save_annotation
from cuelab.core.metrics.agreement import cohen_kappa, krippendorff_alpha
from tests.helpers import read_csv

SWAP = {"angry": "happy", "sad": "neutral"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cuelab", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def labelled(manifest: Path) -> tuple[Path, list[str], list[str]]:
    """Alice gives the manifest's labels; Bob swaps two classes on the first speaker;
    Carol labels only half of the clips (missing data)."""
    rows = read_manifest(manifest).rows
    alice = [r.get("label") for r in rows]
    bob = [SWAP.get(lab, lab) if i < 4 else lab for i, lab in enumerate(alice)]
    for i, r in enumerate(rows):
        save_annotation(manifest, r.rel_path, alice[i], "", annotator="alice")
        save_annotation(manifest, r.rel_path, bob[i], "", annotator="bob")
        if i % 2 == 0:
            save_annotation(manifest, r.rel_path, alice[i].upper(), "", annotator="carol")
    save_annotation(manifest, rows[0].rel_path, "angry", "", annotator="alice", start=0.5, end=1.0)
    save_annotation(manifest, rows[0].rel_path, "sad", "", annotator="bob", start=0.5, end=1.0)
    return manifest, alice, bob


def test_agreement_json(labelled: tuple[Path, list[str], list[str]]) -> None:
    manifest, alice, bob = labelled
    done = _cli("annotations", "agreement", str(manifest), "--json", "--bootstrap", "200")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    carol = [lab if i % 2 == 0 else None for i, lab in enumerate(alice)]
    table = [list(t) for t in zip(alice, bob, carol, strict=True)]
    assert out["krippendorff_alpha"] == pytest.approx(krippendorff_alpha(table))
    assert out["alpha_ci_low"] <= out["krippendorff_alpha"] <= out["alpha_ci_high"]
    assert (out["n_units"], out["n_annotators"]) == (16, 3)
    pairs = {(p["annotator_a"], p["annotator_b"]): p for p in out["pairwise_kappa"]}
    assert set(pairs) == {("alice", "bob"), ("alice", "carol"), ("bob", "carol")}
    ab = pairs[("alice", "bob")]
    assert (ab["n"], ab["agree"]) == (16, 14)  # angry and sad of speaker 1 swapped
    assert ab["kappa"] == pytest.approx(cohen_kappa(alice, bob)[0])
    assert pairs[("alice", "carol")]["kappa"] == pytest.approx(1.0)  # case does not matter
    assert out["per_class_agreement"]["angry"] < 1.0
    assert out["n_region_units"] == 1 and out["krippendorff_alpha_regions"] is not None


def test_agreement_table_and_versus_model(
    labelled: tuple[Path, list[str], list[str]], finished: Path
) -> None:
    manifest, alice, _bob = labelled
    assert main(["annotations", "agreement", str(manifest), "--run", str(finished),
                 "--bootstrap", "50", "--json"]) == 0  # fmt: skip
    done = _cli("annotations", "agreement", str(manifest), "--run", str(finished))
    assert done.returncode == 0, done.stderr
    assert "Krippendorff's alpha (nominal):" in done.stdout
    assert "Fleiss' kappa:" in done.stdout
    preds = {
        r["utt_id"]: r["prediction"]
        for r in read_csv(finished / "predictions.csv")
        if r["condition"] == "audio-only"
    }
    rows = read_manifest(manifest).rows
    agree = sum(preds[r.utt_id] == alice[i] for i, r in enumerate(rows))
    line = next(x for x in done.stdout.splitlines() if x.startswith("alice ") and "reference" in x)
    assert line.split()[-3:-1] == ["16", str(agree)]


def test_agreement_without_sidecars_is_one_line(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("path,label\na.wav,x\n", encoding="utf-8")
    done = _cli("annotations", "agreement", str(m))
    assert done.returncode == 1
    assert done.stderr.strip() == f"cuelab: error: {m}: no annotation sidecars beside it"
