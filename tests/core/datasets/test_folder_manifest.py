"""A folder of clips opened as a dataset: its own manifest, or one written beside the clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cuelab.core.datasets import read_manifest
from cuelab.core.datasets.annotations import load_annotations, save_annotation
from cuelab.core.datasets.folders import FOLDER_MANIFEST, manifest_for_folder
from cuelab.core.errors import ManifestError
from tests.conftest import REPO

DEMO = REPO / "assets" / "demo"


def clips(folder: Path, layout: dict[str, str]) -> None:
    for rel, demo in layout.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO / demo, folder / rel)


def test_class_folders_and_loose_files_become_rows(tmp_path: Path) -> None:
    clips(tmp_path, {"angry/a1.flac": "spk01_f_angry_01.flac",
                     "sad/deep/s1.flac": "spk01_f_sad_01.flac",
                     "loose.flac": "spk04_m_happy_01.flac",
                     ".hidden/x.flac": "spk04_m_happy_02.flac"})  # fmt: skip
    (tmp_path / "notes.txt").write_text("not audio")
    manifest = read_manifest(manifest_for_folder(tmp_path))
    assert manifest.path == (tmp_path / FOLDER_MANIFEST).resolve()
    labels = {row.rel_path: row.get("label") for row in manifest.rows}
    assert labels == {"angry/a1.flac": "angry", "sad/deep/s1.flac": "sad", "loose.flac": ""}


def test_a_folder_with_its_own_manifest_opens_that(tmp_path: Path) -> None:
    clips(tmp_path, {"a.flac": "spk01_f_angry_01.flac"})
    (tmp_path / "mine.csv").write_text("path,label\na.flac,angry\n", encoding="utf-8")
    (tmp_path / "other.csv").write_text("name,value\nx,1\n", encoding="utf-8")  # not a manifest
    assert manifest_for_folder(tmp_path) == tmp_path / "mine.csv"
    assert not (tmp_path / FOLDER_MANIFEST).exists()


def test_opening_again_takes_new_clips_and_keeps_annotations(tmp_path: Path) -> None:
    clips(tmp_path, {"angry/a1.flac": "spk01_f_angry_01.flac"})
    first = manifest_for_folder(tmp_path)
    save_annotation(first, "angry/a1.flac", "sad", "heard sadness")
    clips(tmp_path, {"angry/a2.flac": "spk01_f_angry_02.flac"})
    again = manifest_for_folder(tmp_path)
    assert again == first and len(read_manifest(again)) == 2
    assert load_annotations(again)["angry/a1.flac"].annotator_label == "sad"


def test_a_folder_without_audio_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(ManifestError, match=r"no audio files .* and no manifest"):
        manifest_for_folder(tmp_path)
