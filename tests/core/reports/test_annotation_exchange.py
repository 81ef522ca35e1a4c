"""TextGrid, ELAN and Label Studio: round trips, and files the libraries wrote themselves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cuelab.core.datasets.annotations import load_all, save_annotation
from cuelab.core.reports.annotation_exchange import export_annotations, import_annotations
from tests.conftest import REPO

DEMO = REPO / "assets" / "demo"
CLIPS = ["spk01_f_angry_01.flac", "spk01_f_sad_01.flac", "spk04_m_happy_01.flac"]


def _dataset(folder: Path) -> Path:
    """Three demo clips (one in a subfolder) and their manifest."""
    (folder / "sub").mkdir(parents=True)
    rows = ["path,label"]
    for i, name in enumerate(CLIPS):
        rel = f"sub/{name}" if i == 2 else name
        shutil.copy(DEMO / name, folder / rel)
        rows.append(f"{rel},{name.split('_')[2]}")
    (folder / "set.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder / "set.csv"


def _label_everything(m: Path) -> None:
    a, b, c = CLIPS[0], CLIPS[1], f"sub/{CLIPS[2]}"
    save_annotation(m, a, "angry", "Stimme bricht — ärgerlich", annotator="alice")
    save_annotation(m, a, "happy", "", annotator="bob")
    save_annotation(m, a, "angry", "the shout", annotator="alice", start=0.25, end=0.75)
    save_annotation(m, a, "sad", "", annotator="alice", start=0.5, end=1.0)  # overlaps
    save_annotation(m, a, "", "breath only", annotator="alice", start=1.0, end=1.25)
    save_annotation(m, b, "", "note without a label 悲しい", annotator="bob")
    save_annotation(m, c, "happy", "", annotator="bob", start=0.1, end=0.3)
    save_annotation(m, c, "neutral", "", annotator="carol")


def _content(m: Path) -> set[tuple[str, str, str, str, float | None, float | None]]:
    return {
        (a.annotator, a.path, a.label, a.note, a.start, a.end)
        for anns in load_all(m).values()
        for a in anns
    }


@pytest.mark.parametrize("fmt", ["textgrid", "eaf", "labelstudio"])
def test_round_trip_keeps_every_label_note_region_and_annotator(tmp_path: Path, fmt: str) -> None:
    src = _dataset(tmp_path / "a")
    _label_everything(src)
    out = tmp_path / ("export.json" if fmt == "labelstudio" else "export")
    written = export_annotations(src, fmt, out)
    if fmt == "textgrid":  # one file per annotated clip, named after it
        assert sorted(p.relative_to(out).as_posix() for p in written) == [
            "spk01_f_angry_01.TextGrid", "spk01_f_sad_01.TextGrid",
            "sub/spk04_m_happy_01.TextGrid",
        ]  # fmt: skip
    dst = _dataset(tmp_path / "b")
    result = import_annotations(written[0] if fmt == "labelstudio" else out, dst)
    assert _content(dst) == _content(src)
    assert sorted(p.name for p in result.written) == [
        "set.annotations.alice.csv", "set.annotations.bob.csv", "set.annotations.carol.csv",
    ]  # fmt: skip
    # Importing the same again changes nothing.
    assert import_annotations(written[0] if fmt == "labelstudio" else out, dst).replaced == 0


def test_a_textgrid_written_by_praatio_with_unusual_content(tmp_path: Path) -> None:
    from praatio import textgrid

    m = _dataset(tmp_path / "d")
    tg = textgrid.Textgrid(0.0, 2.0)
    tg.addTier(textgrid.IntervalTier("emotion", [(0.0, 2.0, "ärgerlich")], 0.0, 2.0))
    segments = [(0.0, 0.4, ""), (0.4, 0.9, "怒り"), (0.9, 1.2, "  "), (1.2, 2.0, "calm")]
    tg.addTier(textgrid.IntervalTier("Speaker A", segments, 0.0, 2.0))
    tg.addTier(textgrid.PointTier("pitch marks", [(0.5, "H*"), (1.5, "L%")], 0.0, 2.0))
    path = tmp_path / "spk01_f_angry_01.TextGrid"
    tg.save(str(path), format="short_textgrid", includeBlankSpaces=True)
    result = import_annotations(path, m)
    got = sorted((a.annotator, a.label, a.start, a.end) for a in result.annotations)
    assert got == [
        ("Speaker_A", "calm", 1.2, 2.0),
        ("Speaker_A", "怒り", 0.4, 0.9),
        ("emotion", "ärgerlich", None, None),
    ]
    assert result.skipped == [
        "spk01_f_angry_01.TextGrid: point tier 'pitch marks' ignored (no spans)"
    ]
    assert load_all(m)["emotion"][0].path == "spk01_f_angry_01.flac"


def test_an_eaf_written_by_pympi(tmp_path: Path) -> None:
    from pympi.Elan import Eaf

    m = _dataset(tmp_path / "e")
    eaf = Eaf()
    eaf.add_tier("Emotion-1", ann="dora")
    eaf.add_annotation("Emotion-1", 100, 600, "überrascht")
    eaf.add_tier("ev")
    eaf.add_annotation("ev", 700, 900, "laugh")
    eaf.add_annotation("default", 1000, 1100, "")  # an empty annotation
    path = tmp_path / "spk01_f_sad_01.eaf"
    eaf.to_file(str(path))
    result = import_annotations(path, m)
    got = sorted((a.annotator, a.label, a.start, a.end) for a in result.annotations)
    assert got == [("dora", "überrascht", 0.1, 0.6), ("ev", "laugh", 0.7, 0.9)]


def test_a_label_studio_export_and_predictions_as_pre_annotations(tmp_path: Path) -> None:
    m = _dataset(tmp_path / "l")
    # The shape Label Studio's JSON export has: completed_by is a user id, a region note
    # is a per-region TextArea sharing the region's id.
    tasks = [{
        "id": 7,
        "data": {"audio": "/data/local-files/?d=x/spk01_f_sad_01.flac"},
        "annotations": [
            {"completed_by": 3, "was_cancelled": False, "result": [
                {"id": "a1", "from_name": "label", "to_name": "audio", "type": "choices",
                 "value": {"choices": ["sad"]}},
                {"id": "xY", "from_name": "region", "to_name": "audio", "type": "labels",
                 "value": {"start": 0.2, "end": 0.8, "channel": 0, "labels": ["sad"]}},
                {"id": "xY", "from_name": "region_note", "to_name": "audio", "type": "textarea",
                 "value": {"start": 0.2, "end": 0.8, "text": ["sigh"]}},
            ]},
            {"completed_by": 4, "was_cancelled": True, "result": []},
        ],
        "predictions": [{"model_version": "m", "result": []}],
    }]  # fmt: skip
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    result = import_annotations(path, m)
    got = sorted((a.annotator, a.label, a.note, a.start) for a in result.annotations)
    assert got == [("user3", "sad", "", None), ("user3", "sad", "sigh", 0.2)]
    assert result.skipped == ["task 7: 1 predictions not imported (model output)"]

    out = tmp_path / "tasks.json"
    preds = {"reference": {"spk01_f_angry_01.flac": "angry", "spk01_f_sad_01.flac": ""}}
    export_annotations(m, "labelstudio", out, predictions=preds)
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert [t["data"]["path"] for t in exported] == [CLIPS[0], CLIPS[1], f"sub/{CLIPS[2]}"]
    first = exported[0]["predictions"]
    assert first == [{"model_version": "reference", "result": [
        {"id": "p0", "from_name": "label", "to_name": "audio", "type": "choices",
         "value": {"choices": ["angry"]}}]}]  # fmt: skip
    assert exported[1]["predictions"] == []  # an unparsed answer is no pre-annotation
    assert '<Choice value="sad"/>' in (tmp_path / "tasks.label_config.xml").read_text()


def test_export_and_import_commands(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "a")
    _label_everything(src)
    out = tmp_path / "grids"
    run = [sys.executable, "-m", "cuelab", "annotations"]
    done = subprocess.run([*run, "export", str(src), "--format", "eaf", "-o", str(out)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "spk01_f_angry_01.eaf").is_file()
    dst = _dataset(tmp_path / "b")
    done = subprocess.run([*run, "import", str(out), "--manifest", str(dst)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _content(dst) == _content(src)
    bad = tmp_path / "bad.TextGrid"
    bad.write_text("not a textgrid", encoding="utf-8")
    shutil.copy(bad, tmp_path / "spk01_f_angry_01.TextGrid")
    done = subprocess.run([*run, "import", str(tmp_path / "spk01_f_angry_01.TextGrid"),
                           "--manifest", str(dst)], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("cuelab: error: ") and "not a readable TextGrid" in done.stderr
