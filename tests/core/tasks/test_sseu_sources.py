"""``cuelab import vctk|desed|maestro-real`` on small fake trees in the released layouts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from cuelab.core.errors import ManifestError
from cuelab.core.tasks.sseu.build import build_sseu, read_backgrounds
from cuelab.core.tasks.sseu.per_background import build_per_background
from cuelab.core.tasks.sseu.sources import (
    import_desed,
    import_maestro_real,
    import_vctk,
    load_class_table,
)
from tests.helpers import read_csv as read

SR = 16000


def tone(path: Path, seconds: float, sr: int = SR, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size), sr)


def test_the_class_table_gives_the_papers_6_scenes_and_18_events() -> None:
    scenes, events = load_class_table().classes()
    assert len(scenes) == 6 and "home" in scenes and "metro_station" in scenes
    assert len(events) == 18
    table = load_class_table()
    assert table.event("maestro-real", "people talking") == table.event("desed", "Speech")
    assert table.event("maestro-real", "children voices") == "speech"
    assert table.event("maestro-real", "cutlery and dishes") == table.event("desed", "Dishes")
    assert table.event("maestro-real", "coffee machine") == ""  # known, mapped to nothing
    assert table.event("maestro-real", "spaceship") is None


@pytest.fixture()
def vctk_092(tmp_path: Path) -> Path:
    root = tmp_path / "VCTK-Corpus-0.92"
    for spk, utts in (("p225", ("001", "002")), ("p226", ("001",)), ("p315", ("001",))):
        for u in utts:
            for mic in ("mic1", "mic2"):
                tone(root / "wav48_silence_trimmed" / spk / f"{spk}_{u}_{mic}.flac", 0.5)
            if spk != "p315":  # p315 has no transcripts in the release
                txt = root / "txt" / spk / f"{spk}_{u}.txt"
                txt.parent.mkdir(parents=True, exist_ok=True)
                txt.write_text(f"Please call Stella {spk} {u}.\n", encoding="utf-8")
    (root / "speaker-info.txt").write_text(
        "ID  AGE  GENDER  ACCENTS  REGION COMMENTS\n"
        "p225  23  F    English    Southern  England\n"
        "p226  22  M    English    Surrey\n",
        encoding="utf-8",
    )
    return root


def test_vctk_092_layout(vctk_092: Path, tmp_path: Path) -> None:
    out = tmp_path / "m" / "speech.csv"
    report = import_vctk(vctk_092, out)
    rows = read(out)
    assert [r["utterance"] for r in rows] == ["p225_001", "p225_002", "p226_001"]
    assert {r["mic"] for r in rows} == {"mic1"}
    assert [r["gender"] for r in rows] == ["f", "f", "m"]
    assert rows[0]["transcript"] == "Please call Stella p225 001."
    assert report.dropped == {"no transcript": 1, "other microphone (mic2)": 4}
    mic2 = read(Path(import_vctk(vctk_092, tmp_path / "m2.csv", mic="mic2").manifest))
    assert {r["mic"] for r in mic2} == {"mic2"}


def test_vctk_080_layout_and_a_wrong_folder(tmp_path: Path) -> None:
    root = tmp_path / "VCTK-Corpus"
    tone(root / "wav48" / "p225" / "p225_001.wav", 0.5)
    (root / "txt" / "p225").mkdir(parents=True)
    (root / "txt" / "p225" / "p225_001.txt").write_text("Ask her.\n", encoding="utf-8")
    (root / "speaker-info.txt").write_text("ID AGE GENDER ACCENTS REGION\n225 23 F English X\n",
                                           encoding="utf-8")  # fmt: skip
    rows = read(import_vctk(root, tmp_path / "s.csv").manifest)
    assert len(rows) == 1 and rows[0]["gender"] == "f" and rows[0]["mic"] == ""
    with pytest.raises(ManifestError, match="not a VCTK release"):
        import_vctk(tmp_path / "nothing", tmp_path / "x.csv")


@pytest.fixture()
def desed(tmp_path: Path) -> Path:
    root = tmp_path / "DESED" / "dataset"
    for i in range(3):
        tone(root / "audio" / "eval" / "public" / f"Y{i:02d}.wav", 2.0, seed=i)
    tone(root / "audio" / "validation" / "validation" / "Y00.wav", 2.0, seed=9)  # same name
    meta = root / "metadata" / "eval"
    meta.mkdir(parents=True)
    (meta / "public.tsv").write_text(
        "filename\tonset\toffset\tevent_label\n"
        "Y00.wav\t0.2\t1.1\tDog\n"
        "Y00.wav\t0.5\t1.9\tSpeech\n"
        "Y01.wav\t\t\t\n"  # a clip without events
        "Y02.wav\t0.0\t2.0\tVacuum_cleaner\n"
        "Y99.wav\t0.0\t1.0\tCat\n",  # audio missing
        encoding="utf-8",
    )
    (meta / "public_durations.tsv").write_text("filename\tduration\nY00.wav\t2.0\n", "utf-8")
    return tmp_path / "DESED"


def test_desed_strong_labels(desed: Path, tmp_path: Path) -> None:
    out = tmp_path / "bg" / "desed.csv"
    report = import_desed(desed, out)
    rows = {Path(r["path"]).stem: r for r in read(out)}
    assert set(rows) == {"Y00", "Y01", "Y02"} and report.dropped == {"audio not found": 1}
    assert "public" in rows["Y00"]["path"]  # the eval/public copy, not validation's
    assert rows["Y00"]["scene"] == "home"
    assert rows["Y00"]["events"] == "dog;speech"
    assert rows["Y00"]["event_times"] == "dog@0.200-1.100;speech@0.500-1.900"
    assert rows["Y01"]["events"] == "" and rows["Y02"]["events"] == "vacuum_cleaner"
    backgrounds = read_backgrounds(out)  # what sseu build reads
    assert {b.scene for b in backgrounds} == {"home"}


@pytest.fixture()
def maestro(tmp_path: Path) -> Path:
    root = tmp_path / "MAESTRO_Real"
    tone(root / "development_audio" / "cafe_restaurant" / "cafe_restaurant_00.wav", 25.0)
    tone(root / "development_audio" / "metro_station" / "metro_station_01.wav", 20.0, seed=1)
    notes = root / "development_annotation"
    notes.mkdir(parents=True)
    lines = [f"{t}\t{t + 1}\tpeople talking\t0.8" for t in range(0, 13)]
    lines += [f"{t}\t{t + 1}\tcutlery and dishes\t0.3" for t in range(0, 5)]  # below 0.5
    lines += ["11\t12\tcoffee machine\t1.0", "21\t22\tcutlery and dishes\t0.9"]
    (notes / "cafe_restaurant_00.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (notes / "metro_station_01.txt").write_text(
        "0\t1\tmetro approaching\t0.6\n1\t2\tmetro approaching\t0.7\n15\t16\tfootsteps\t1\n",
        encoding="utf-8",
    )
    return root


def test_maestro_real_segments_scenes_and_merged_events(maestro: Path, tmp_path: Path) -> None:
    out = tmp_path / "bg" / "maestro.csv"
    report = import_maestro_real(maestro, out)
    rows = {Path(r["path"]).stem: r for r in read(out)}
    assert set(rows) == {"cafe_restaurant_00_000", "cafe_restaurant_00_001",
                         "metro_station_01_000", "metro_station_01_001"}  # fmt: skip
    assert report.dropped == {"last part shorter than a segment": 1}
    for r in rows.values():
        assert sf.info(str(out.parent / r["path"])).duration == pytest.approx(10.0)
    first, second = rows["cafe_restaurant_00_000"], rows["cafe_restaurant_00_001"]
    assert first["scene"] == "cafe_restaurant" and first["events"] == "speech"
    assert first["event_times"] == "speech@0.000-10.000"  # 1-s frames merged
    assert second["event_times"] == "speech@0.000-3.000"
    assert second["unmapped_events"] == "coffee machine" and "dishes" not in second["events"]
    metro = rows["metro_station_01_000"]
    assert metro["events"] == "metro_approaching"
    assert metro["event_times"] == "metro_approaching@0.000-2.000"
    assert rows["metro_station_01_001"]["events"] == "footsteps"


def test_imported_sources_build_a_per_background_set(
    vctk_092: Path, desed: Path, maestro: Path, tmp_path: Path
) -> None:
    """From raw trees to an SSEU set, as docs/reproducing.md runs it."""
    speech = tmp_path / "speech.csv"
    assert main(["import", "vctk", str(vctk_092), "-o", str(speech)]) == 0
    assert main(["import", "desed", str(desed), "-o", str(tmp_path / "desed.csv")]) == 0
    assert main(["import", "maestro-real", str(maestro), "-o", str(tmp_path / "m.csv")]) == 0
    bg = tmp_path / "backgrounds.csv"
    header, *a = (tmp_path / "desed.csv").read_text(encoding="utf-8").splitlines()
    _, *b = (tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()
    bg.write_text("\n".join([header, *a, *b]) + "\n", encoding="utf-8")
    result = build_per_background(tmp_path / "set", speech, bg, (0.0, math.inf), sr=SR)
    assert result.rows == (3 + 4) * 2
    assert set(result.scenes) == {"home", "cafe_restaurant", "metro_station"}
    with pytest.raises(ManifestError):
        build_sseu(tmp_path / "bad", speech, tmp_path / "nothing.csv", (0.0,))
