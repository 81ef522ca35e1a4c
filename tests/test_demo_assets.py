"""The bundled synthetic demo corpus and backgrounds are complete and sane.

These test the committed files (regenerating everything is the script's job);
one test runs the script's quick mode into a temporary folder.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO

ROOT = REPO
DEMO = ROOT / "assets" / "demo"
BACKGROUNDS = ROOT / "assets" / "backgrounds"
SCRIPT = ROOT / "scripts" / "make_demo.py"
LABELS = {"angry", "happy", "neutral", "sad"}
MAX_BYTES = 15 * 1024 * 1024


def _read_manifest(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def demo_rows() -> list[dict[str, str]]:
    return _read_manifest(DEMO / "manifest.csv")[1]


@pytest.fixture(scope="module")
def background_rows() -> list[dict[str, str]]:
    return _read_manifest(BACKGROUNDS / "manifest.csv")[1]


@pytest.fixture(scope="module")
def make_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_demo"] = module  # dataclasses look their module up while loading
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["make_demo"]
    return module


def test_demo_manifest_columns_and_values(demo_rows: list[dict[str, str]]) -> None:
    columns, _ = _read_manifest(DEMO / "manifest.csv")
    assert columns == ["path", "label", "speaker", "gender", "split", "transcript"]
    assert demo_rows
    for row in demo_rows:
        assert row["label"] in LABELS, row
        assert row["gender"] in {"m", "f"}, row
        assert row["split"] in {"train", "test"}, row
        assert row["transcript"].strip(), row
        assert (DEMO / row["path"]).is_file(), row["path"]
    assert len({r["path"] for r in demo_rows}) == len(demo_rows)


def test_speakers_genders_and_splits(demo_rows: list[dict[str, str]]) -> None:
    per_speaker: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in demo_rows:
        per_speaker[row["speaker"]].add((row["gender"], row["split"]))
    assert len(per_speaker) >= 6
    assert all(len(v) == 1 for v in per_speaker.values()), "speaker with mixed gender/split"
    info = {spk: next(iter(v)) for spk, v in per_speaker.items()}
    count: dict[tuple[str, str], int] = defaultdict(int)
    for gender, split in info.values():
        count[gender, split] += 1
    assert count["f", "train"] == 2 and count["m", "train"] == 2
    assert count["f", "test"] == 1 and count["m", "test"] == 1


def test_every_speaker_has_every_style_and_sentence(demo_rows: list[dict[str, str]]) -> None:
    sentences = {r["transcript"] for r in demo_rows}
    assert len(sentences) >= 3
    cells: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in demo_rows:
        cells[row["speaker"], row["label"]].add(row["transcript"])
    for speaker in {r["speaker"] for r in demo_rows}:
        for label in LABELS:
            assert cells[speaker, label] == sentences, (speaker, label)


def test_demo_audio_is_16k_mono_flac_of_plausible_length(demo_rows: list[dict[str, str]]) -> None:
    for row in demo_rows:
        info = sf.info(str(DEMO / row["path"]))
        assert (info.samplerate, info.channels) == (16_000, 1), row["path"]
        assert (info.format, info.subtype) == ("FLAC", "PCM_16"), row["path"]
        assert 0.5 <= info.duration <= 5.0, (row["path"], info.duration)


def test_angry_is_louder_than_sad_for_every_speaker(demo_rows: list[dict[str, str]]) -> None:
    rms: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in demo_rows:
        if row["label"] in {"angry", "sad"}:
            audio, _ = sf.read(str(DEMO / row["path"]), dtype="float64")
            assert np.max(np.abs(audio)) < 1.0, row["path"]
            rms[row["speaker"], row["label"]].append(float(np.sqrt(np.mean(audio**2))))
    for speaker in {r["speaker"] for r in demo_rows}:
        angry, sad = np.mean(rms[speaker, "angry"]), np.mean(rms[speaker, "sad"])
        assert angry > 1.5 * sad, (speaker, angry, sad)


def test_backgrounds_manifest_and_files(background_rows: list[dict[str, str]]) -> None:
    columns, _ = _read_manifest(BACKGROUNDS / "manifest.csv")
    assert columns == ["path", "scene", "events", "event_times", "description"]
    assert len(background_rows) >= 3
    assert len({r["scene"] for r in background_rows}) == len(background_rows)
    for row in background_rows:
        path = BACKGROUNDS / row["path"]
        info = sf.info(str(path))
        assert info.samplerate in {16_000, 44_100} and info.channels == 1, row["path"]
        assert info.format == "FLAC" and 8.0 <= info.duration <= 15.0, row["path"]
        labels = row["events"].split(";")
        assert all(labels) and row["description"].strip(), row
        for item in row["event_times"].split(";"):
            label, span = item.split("@")
            start, end = (float(x) for x in span.split("-"))
            assert label in labels and 0.0 <= start < end <= info.duration, item


def test_total_size_is_at_most_15_mb() -> None:
    total = sum(p.stat().st_size for d in (DEMO, BACKGROUNDS) for p in d.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, total


def test_readme_says_synthetic_and_matches_style_table(make_demo: ModuleType) -> None:
    text = (DEMO / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in text.lower() and "espeak-ng" in text
    for style in make_demo.STYLES:
        row = (
            f"| {style.label} | {style.rate} | {style.pitch} | {style.amplitude} "
            f"| {style.range_pct}% |"
        )
        assert row in text, row


def test_quick_mode_regenerates_the_first_speaker(
    tmp_path: Path, demo_rows: list[dict[str, str]]
) -> None:
    demo_dir, bg_dir = tmp_path / "demo", tmp_path / "bg"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--only",
            "1",
            "--demo-dir",
            str(demo_dir),
            "--backgrounds-dir",
            str(bg_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _, rows = _read_manifest(demo_dir / "manifest.csv")
    first = demo_rows[0]["speaker"]
    assert rows == [r for r in demo_rows if r["speaker"] == first]
    for row in rows:
        info = sf.info(str(demo_dir / row["path"]))
        assert info.samplerate == 16_000 and 0.5 <= info.duration <= 5.0
    _, bg_rows = _read_manifest(bg_dir / "manifest.csv")
    assert len(bg_rows) == 1 and (bg_dir / bg_rows[0]["path"]).is_file()
