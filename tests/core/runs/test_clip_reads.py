"""Each clip file is read once per run (issue 19), counted by the kernel.

Before, an emotion eval opened each clip 4-6 times (hashed for the feature cache,
decoded for the features, decoded and hashed again per model); SSEU twice per model.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuelab.core.audio.io import ClipReader, load_audio
from cuelab.core.cues import FeatureCache, extract_many
from cuelab.core.runs import run_eval
from tests.core.runs.test_emotion_runs import DEMO, LABELS, config
from tests.core.runs.test_sseu_runs import build_set
from tests.core.runs.test_sseu_runs import config as sseu_config
from tests.open_counter import OpenCounter

NAMES = [f"spk0{s}_{lab}_01.flac" for s in ("1_f", "4_m") for lab in LABELS]


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """8 demo clips copied (not linked: inotify counts opens where the file lives)."""
    folder = tmp_path / "data"
    folder.mkdir()
    lines = ["path,label,speaker,gender"]
    for name in NAMES:
        shutil.copy(DEMO / name, folder / name)
        spk, lab = name.split("_")[0], name.split("_")[2]
        lines.append(f"{name},{lab},{spk},{name.split('_')[1]}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def opens(clips: Path) -> Iterator[OpenCounter]:
    counter = OpenCounter([clips])
    yield counter
    counter.close()


def test_the_counter_sees_libsndfile_opens(clips: Path, opens: OpenCounter) -> None:
    """A path decode opens the file twice (header, then samples): the count is real."""
    load_audio(clips / NAMES[0])
    assert opens.take() == Counter({NAMES[0]: 2})


def test_emotion_eval_reads_each_clip_once(clips: Path, opens: OpenCounter, tmp_path: Path) -> None:
    """Features (cold, then warm cache) and two models' scoring: one open per clip per run."""
    cache = FeatureCache(tmp_path / "cache")
    models = ["reference", "oracle:-"]
    for run in ("cold", "warm"):
        opens.take()  # the manifest's folder listing and earlier runs
        cfg = config(clips / "manifest.csv", tmp_path / run, models=models,
                     conditions="audio-only,correct", seeds=[0])  # fmt: skip
        run_eval(cfg, cache=cache)
        got = opens.take()
        assert {n: got[n] for n in NAMES} == dict.fromkeys(NAMES, 1), run
    assert (tmp_path / "warm" / "predictions.csv").read_bytes() == (
        tmp_path / "cold" / "predictions.csv"
    ).read_bytes()


def test_feature_pool_reads_each_clip_once(clips: Path, opens: OpenCounter, tmp_path: Path) -> None:
    """Misses go to the worker processes as the bytes read for the hash, not as paths."""
    cache = FeatureCache(tmp_path / "cache")
    pooled = extract_many([clips / n for n in NAMES], cache=cache, workers=2)
    got = opens.take()
    assert {n: got[n] for n in NAMES} == dict.fromkeys(NAMES, 1)
    serial = extract_many([clips / n for n in NAMES], workers=1)  # no cache: decoded by path
    assert [f.to_dict() for f in pooled] == [f.to_dict() for f in serial]


def test_clip_reader_holds_up_to_its_budget(clips: Path, opens: OpenCounter) -> None:
    path = clips / NAMES[0]
    held = ClipReader()
    assert held.read(path) is held.read(path)
    assert opens.take()[NAMES[0]] == 1
    none = ClipReader(budget=0)  # nothing held: each pass reads again, memory stays flat
    none.read(path), none.read(path)
    assert opens.take()[NAMES[0]] == 2 and none.held_bytes == 0


def test_sseu_eval_reads_each_clip_once(tmp_path: Path) -> None:
    sseu_set = build_set(tmp_path / "sseu", [n[:-5] for n in NAMES[:2]])
    folders = sorted({p.parent for p in (sseu_set.parent / "audio").rglob("*.flac")})
    counter = OpenCounter(folders)
    try:
        run_eval(sseu_config(sseu_set, tmp_path / "run", models=["oracle", "oracle:-"]))
        got = counter.take()
    finally:
        counter.close()
    files = [p.name for f in folders for p in f.glob("*.flac")]
    assert files and set(got) == set(files)  # names repeat across SNR folders
    assert sum(got.values()) == len(files)  # one open each


def test_edit_eval_reads_each_source_clip_once(
    clips: Path, opens: OpenCounter, tmp_path: Path
) -> None:
    """The edit stage hashes and decodes the sources the features pass read."""
    opens.take()
    cfg = config(clips / "manifest.csv", tmp_path / "edits", conditions="audio-only",
                 seeds=[0], edits=["pitch=+2st"], limit=3)  # fmt: skip
    run_eval(cfg, cache=FeatureCache(tmp_path / "cache"))
    got = opens.take()
    assert {n: got[n] for n in NAMES[:3]} == dict.fromkeys(NAMES[:3], 1)


def test_feature_pool_rereads_misses_past_its_budget(
    clips: Path, opens: OpenCounter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold dataset larger than the budget is not held whole: the rest are read again."""
    from cuelab.core.cues import feature_pool

    monkeypatch.setattr(feature_pool, "MISS_BYTES_HELD", 0)
    paths = [clips / n for n in NAMES[:3]]
    held = extract_many(paths, cache=FeatureCache(tmp_path / "a"), workers=1)
    got = opens.take()
    assert [got[n] for n in NAMES[:3]] == [3, 3, 3]  # hash read, then a path decode (2)
    monkeypatch.setattr(feature_pool, "MISS_BYTES_HELD", 1 << 30)
    again = extract_many(paths, cache=FeatureCache(tmp_path / "b"), workers=1)
    got = opens.take()
    assert [got[n] for n in NAMES[:3]] == [1, 1, 1]
    assert [f.to_dict() for f in held] == [f.to_dict() for f in again]
