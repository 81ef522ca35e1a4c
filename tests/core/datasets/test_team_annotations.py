"""Per-annotator sidecars, the legacy single sidecar, and merging copies (Qt-free)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from cuelab.core.datasets.annotation_merge import merge_annotations, merged_table_path
from cuelab.core.datasets.annotations import (
    annotators,
    load_all,
    load_annotations,
    load_annotator,
    save_annotation,
    sidecar_path,
)
from cuelab.core.errors import ManifestError
from tests.helpers import read_csv as read


def _manifest(folder: Path, name: str = "set.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    m = folder / name
    m.write_text("path,label\na.wav,sad\nb.wav,angry\nc.wav,happy\n", encoding="utf-8")
    return m


def test_each_annotator_has_a_sidecar_and_never_overwrites_another(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    save_annotation(m, "a.wav", "sad", "low voice", annotator="alice")
    save_annotation(m, "a.wav", "neutral", "", annotator="bob")
    save_annotation(m, "a.wav", "angry", "the shout", annotator="bob", start=1.25, end=2.5)
    assert sidecar_path(m, "alice") == tmp_path / "set.annotations.alice.csv"
    assert annotators(m) == ["alice", "bob"]
    with sidecar_path(m, "bob").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["path", "label", "note", "start", "end", "updated"]
    assert [r[:5] for r in rows[1:]] == [
        ["a.wav", "neutral", "", "", ""],
        ["a.wav", "angry", "the shout", "1.25", "2.5"],
    ]
    assert load_annotations(m, "alice")["a.wav"].label == "sad"
    bob = load_annotator(m, "bob")
    assert [(a.annotator, a.label, a.start, a.end) for a in bob] == [
        ("bob", "neutral", None, None),
        ("bob", "angry", 1.25, 2.5),
    ]
    # Whole-clip view leaves the region out; the region is its own unit.
    assert list(load_annotations(m, "bob")) == ["a.wav"]
    with pytest.raises(ManifestError, match="annotator name"):
        save_annotation(m, "a.wav", "sad", "", annotator="../evil")
    with pytest.raises(ManifestError, match="not before end"):
        save_annotation(m, "a.wav", "sad", "", annotator="bob", start=2.0, end=1.0)


def test_the_legacy_sidecar_is_read_as_default_until_default_saves(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    legacy = tmp_path / "set.annotations.csv"
    legacy.write_text(
        "path,annotator_label,note,updated\na.wav,sad,old note,2025-01-01T00:00:00+00:00\n"
        "b.wav,angry,,2025-01-01T00:00:00+00:00\n",
        encoding="utf-8",
    )
    assert annotators(m) == ["default"]
    assert load_all(m)["default"][0].note == "old note"
    # The first save as default keeps every legacy row in the new file ...
    save_annotation(m, "b.wav", "", "")  # ... and a removal stays removed.
    assert set(load_annotations(m)) == {"a.wav"}
    assert [r["path"] for r in read(sidecar_path(m, "default"))] == ["a.wav"]
    assert legacy.exists()  # never deleted: nothing is lost


def _copy(tmp_path: Path, who: str, labels: dict[str, str]) -> Path:
    """An annotator's copy of the dataset, labelled there; returns their sidecar."""
    m = _manifest(tmp_path / f"copy-{who}")
    for path, label in labels.items():
        save_annotation(m, path, label, f"{who} on {path}", annotator=who)
    return sidecar_path(m, who)


def test_merging_two_annotators_copies_loses_nothing_and_lists_conflicts(tmp_path: Path) -> None:
    m = _manifest(tmp_path / "main")
    alice = _copy(tmp_path, "alice", {"a.wav": "sad", "b.wav": "angry"})
    bob = _copy(tmp_path, "bob", {"a.wav": "neutral", "b.wav": "angry", "c.wav": "happy"})
    result = merge_annotations(m, [alice, bob])
    assert sorted(p.name for p in result.written) == [
        "set.annotations.alice.csv",
        "set.annotations.bob.csv",
    ]
    got = load_all(m)
    assert {who: {a.path: a.label for a in anns} for who, anns in got.items()} == {
        "alice": {"a.wav": "sad", "b.wav": "angry"},
        "bob": {"a.wav": "neutral", "b.wav": "angry", "c.wav": "happy"},
    }
    assert [c.describe() for c in result.conflicts] == ["a.wav (labels): alice=sad, bob=neutral"]
    table = read(merged_table_path(m))
    assert len(table) == 5  # every label of every annotator
    marked = {(r["path"], r["annotator"]): r["conflict"] for r in table}
    assert marked[("a.wav", "alice")] == marked[("a.wav", "bob")] == "labels"
    assert marked[("b.wav", "alice")] == ""
    assert {r["note"] for r in table} >= {"alice on a.wav", "bob on c.wav"}


def test_two_copies_of_one_annotator_keep_both_versions(tmp_path: Path) -> None:
    m = _manifest(tmp_path / "main")
    save_annotation(m, "a.wav", "sad", "first thought", annotator="alice")
    other = _manifest(tmp_path / "laptop")
    (tmp_path / "laptop" / "set.annotations.alice.csv").write_text(
        "path,label,note,start,end,updated\n"
        "a.wav,angry,second thought,,,2999-01-01T00:00:00+00:00\n"
        "b.wav,angry,,0.5,1.0,2999-01-01T00:00:00+00:00\n",
        encoding="utf-8",
    )
    result = merge_annotations(m, [other.with_name("set.annotations.alice.csv")])
    kinds = [(c.unit, c.kind) for c in result.conflicts]
    assert kinds == [(("a.wav", None, None), "versions")]
    # The sidecar keeps the newest version; the table keeps both.
    now = {a.unit: a for a in load_annotator(m, "alice")}
    assert now[("a.wav", None, None)].label == "angry"
    assert now[("b.wav", 0.5, 1.0)].label == "angry"
    notes = sorted(r["note"] for r in read(merged_table_path(m)) if r["path"] == "a.wav")
    assert notes == ["first thought", "second thought"]


def test_merge_command_lists_conflicts(tmp_path: Path) -> None:
    m = _manifest(tmp_path / "main")
    alice = _copy(tmp_path, "alice", {"a.wav": "sad"})
    bob = _copy(tmp_path, "bob", {"a.wav": "happy"})
    done = subprocess.run(
        [sys.executable, "-m", "cuelab", "annotations", "merge", str(m), str(alice), str(bob)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["a.wav (labels): alice=sad, bob=happy"]
    assert "1 conflicts" in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "cuelab", "annotations", "merge", str(m), str(tmp_path / "no.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"cuelab: error: {tmp_path / 'no.csv'}: sidecar not found"


def test_a_folder_with_sidecars_and_a_merged_table_still_opens_its_manifest(
    tmp_path: Path,
) -> None:
    from cuelab.core.datasets.folders import manifest_for_folder

    m = _manifest(tmp_path)
    save_annotation(m, "a.wav", "sad", "", annotator="alice")
    save_annotation(m, "a.wav", "happy", "", annotator="bob")
    merge_annotations(m)  # writes set.annotations-merged.csv, which has a path column too
    assert merged_table_path(m).is_file()
    assert manifest_for_folder(tmp_path) == m
