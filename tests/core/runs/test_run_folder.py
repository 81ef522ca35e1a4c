"""RunFolder and the typed RunRecord: today's run folders read and write back unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cuelab.core.reports.build import build_report
from cuelab.core.runs import RunConfigError, RunFolder, RunRecord, merge_runs, run_eval
from cuelab.core.runs.csvio import CorruptTableError, read_complete_rows
from tests.core.runs.test_emotion_runs import config, make_manifest

MODELS = ["reference", "oracle:-"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished emotion run with its report (run.json then has ``analysis`` too)."""
    manifest = make_manifest(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("runs") / "r"
    run_eval(config(manifest, out, models=MODELS, seeds=[0]))
    build_report(out, plots=False)
    return out


def _text(record: RunRecord) -> str:
    return json.dumps(record.to_json(), indent=2, ensure_ascii=False) + "\n"


def test_a_record_read_and_written_back_is_byte_identical(run: Path, tmp_path: Path) -> None:
    folder = RunFolder(run)
    before = folder.run_json.read_text(encoding="utf-8")
    record = folder.read_record()
    assert _text(record) == before
    assert list(record.sections) == ["interventions", "notes", "analysis"]
    assert record.status == "complete" and record.labels and record.interventions
    copy = RunFolder(tmp_path / "copy")
    shutil.copytree(run, copy.path)
    copy.write_record(copy.read_record())
    assert copy.run_json.read_text(encoding="utf-8") == before


def test_a_section_from_a_newer_cuelab_is_kept_in_its_place(run: Path, tmp_path: Path) -> None:
    data = json.loads(RunFolder(run).run_json.read_text(encoding="utf-8"))
    data["future"] = {"x": 1}
    data["notes"] = ["kept"]
    record = RunRecord.from_json(data)
    record.analysis = {"holm": "all"}  # an existing section is replaced where it stands
    out = record.to_json()
    assert list(out) == list(data)
    assert out["future"] == {"x": 1} and out["analysis"] == {"holm": "all"}
    assert record.notes == ["kept"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema=2), "run schema 2 is not supported"),
        (lambda d: d.update(kind="other"), "not a CueLab run record"),
        (lambda d: d.pop("sessions"), "'sessions' is missing"),
        (lambda d: d.update(labels="a,b"), "'labels' is not a list"),
        (lambda d: d["config"].update(seeds="x"), "'config' is damaged"),
    ],
)
def test_a_damaged_record_is_refused_naming_the_part(run: Path, change, message: str) -> None:
    data = json.loads(RunFolder(run).run_json.read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(RunConfigError, match=message):
        RunRecord.from_json(data, "run.json")


def test_the_folder_knows_its_files_and_reads_its_rows(run: Path, tmp_path: Path) -> None:
    folder = RunFolder(run)
    assert folder.predictions == run / "predictions.csv" and folder.errors == run / "errors.csv"
    assert folder.has_record() and folder.has_rows() and folder.read_errors() == []
    header, rows = folder.read_predictions(folder.read_record())
    assert header[:3] == ["utt_id", "speaker", "label"] and rows
    assert folder.report_files([run / "summary.csv"]) == [
        run / "summary.csv",
        run / "predictions.csv",
        run / "run.json",
    ]
    empty = RunFolder(tmp_path / "none")
    assert not empty.has_record() and not empty.has_rows()
    with pytest.raises(RunConfigError, match="not a run folder"):
        empty.read_record()


def test_repair_moves_a_row_the_record_refuses_aside(run: Path, tmp_path: Path) -> None:
    copy = RunFolder(tmp_path / "copy")
    shutil.copytree(run, copy.path)
    lines = copy.predictions.read_text(encoding="utf-8").splitlines(keepends=True)
    copy.predictions.write_text("".join([*lines, lines[1]]), encoding="utf-8")  # a copied row
    with pytest.raises(CorruptTableError, match="repeats an earlier row"):
        copy.read_predictions(copy.read_record())
    kept, moved, quarantine = copy.repair(copy.read_record())
    assert (kept, moved) == (len(lines) - 1, 1) and quarantine is not None
    assert (
        read_complete_rows(copy.predictions)[1] == read_complete_rows(RunFolder(run).predictions)[1]
    )


def test_a_merged_record_keeps_the_first_shard_s_sections_then_the_merge_s(
    tmp_path: Path,
) -> None:
    manifest = make_manifest(tmp_path / "data")
    parts = []
    for i in (1, 2):
        out = tmp_path / f"s{i}"
        run_eval(config(manifest, out, models=["reference"], seeds=[0], shard=f"{i}/2"))
        parts.append(out)
    merge_runs(parts, tmp_path / "m")
    merged = RunFolder(tmp_path / "m").read_record()
    assert merged.merged and merged.status == "complete"
    assert list(merged.sections) == ["interventions", "notes", "merged_from", "missing_shards"]
    assert merged.identity["shard"] is None and len(merged.sessions) == 2
    with pytest.raises(RunConfigError, match="merged shards; it cannot be resumed"):
        run_eval(config(manifest, tmp_path / "m", models=["reference"], seeds=[0]), resume=True)
