"""Dataset importers on small fake trees that follow the real naming conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from cuelab.core.datasets import read_manifest
from cuelab.core.datasets.aibo import import_aibo
from cuelab.core.datasets.folders import import_folders
from cuelab.core.datasets.iemocap import import_iemocap
from cuelab.core.datasets.writer import render_manifest, write_manifest
from cuelab.core.errors import ManifestError
from cuelab.core.safeio import neutralise

SR = 16000


def _wav(path: Path, seconds: float = 0.2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    sf.write(path, 0.05 * rng.standard_normal(int(SR * seconds)).astype(np.float32), SR)


# --- IEMOCAP -----------------------------------------------------------------------------

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"

# (dialog, utterance, code, has_wav); dialog Ses01F_* is led by the female actor.
IEMOCAP_UTTS = {
    1: [
        ("Ses01F_impro01", "Ses01F_impro01_F000", "neu", True),
        ("Ses01F_impro01", "Ses01F_impro01_M003", "ang", True),  # male turn in an F dialog
        ("Ses01F_impro01", "Ses01F_impro01_F001", "fru", True),
        ("Ses01F_impro01", "Ses01F_impro01_M004", "xxx", True),
        ("Ses01F_impro01", "Ses01F_impro01_F002", "exc", True),
        ("Ses01F_impro01", "Ses01F_impro01_F003", "sad", False),  # wav missing
        ("Ses01M_script01_1", "Ses01M_script01_1_F005", "hap", True),  # female turn, M dialog
        ("Ses01M_script01_1", "Ses01M_script01_1_M000", "neu", True),
    ],
    5: [
        ("Ses05F_impro02", "Ses05F_impro02_M010", "sad", True),
        ("Ses05F_impro02", "Ses05F_impro02_F011", "ang", True),
    ],
}


def _eval_line(i: int, utt: str, code: str) -> str:
    start = 1.0 + 3 * i
    return (
        f"[{start:.4f} - {start + 2.1:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]\n"
        f"C-E1:\tNeutral;\t()\nA-E1:\tval 3; act 2; dom  2;\t()\n\n"
    )


def make_iemocap(root: Path) -> Path:
    for session, utts in IEMOCAP_UTTS.items():
        folder = root / f"Session{session}"
        evaluation = folder / "dialog" / "EmoEvaluation"
        (evaluation / "Categorical").mkdir(parents=True)
        (evaluation / "Categorical" / "notes.txt").write_text("[not a summary line\n")
        (evaluation / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07[garbage")
        texts: dict[str, str] = {}
        for i, (dialog, utt, code, has_wav) in enumerate(utts):
            texts[dialog] = texts.get(dialog, HEADER) + _eval_line(i, utt, code)
            if has_wav:
                _wav(folder / "sentences" / "wav" / dialog / f"{utt}.wav")
        for dialog, text in texts.items():
            (evaluation / f"{dialog}.txt").write_text(text)
    return root


def test_iemocap_import(tmp_path: Path) -> None:
    root = make_iemocap(tmp_path / "IEMOCAP_full_release")
    out = tmp_path / "manifests" / "iemocap.csv"
    report = import_iemocap(root, out)

    manifest = read_manifest(out)
    rows = {Path(r.rel_path).stem: r for r in manifest}
    assert report.rows == len(manifest) == 7
    assert sorted(rows) == sorted(
        [
            "Ses01F_impro01_F000",
            "Ses01F_impro01_M003",
            "Ses01F_impro01_F002",
            "Ses01M_script01_1_F005",
            "Ses01M_script01_1_M000",
            "Ses05F_impro02_M010",
            "Ses05F_impro02_F011",
        ]
    )
    # Paths are relative to the manifest's folder and point at the wavs.
    first = rows["Ses01F_impro01_F000"]
    assert (
        first.rel_path
        == "../IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    )
    assert first.path.is_file()
    # Speaker and gender come from the utterance's own letter, not the dialog's.
    assert (rows["Ses01F_impro01_M003"].get("speaker"), rows["Ses01F_impro01_M003"].gender) == (
        "Ses01_M",
        "m",
    )
    assert (
        rows["Ses01M_script01_1_F005"].get("speaker"),
        rows["Ses01M_script01_1_F005"].gender,
    ) == (
        "Ses01_F",
        "f",
    )
    assert rows["Ses05F_impro02_M010"].get("speaker") == "Ses05_M"
    # Labels: exc merged into happy, the raw code kept.
    assert rows["Ses01F_impro01_F002"].get("label") == "happy"
    assert rows["Ses01F_impro01_F002"].get("raw_label") == "exc"
    assert rows["Ses01M_script01_1_F005"].get("label") == "happy"
    assert rows["Ses01F_impro01_M003"].get("label") == "angry"
    # Splits: sessions 1-4 train, session 5 test.
    assert {k: r.get("split") for k, r in rows.items() if k.startswith("Ses05")} == {
        "Ses05F_impro02_M010": "test",
        "Ses05F_impro02_F011": "test",
    }
    assert all(r.get("split") == "train" for k, r in rows.items() if k.startswith("Ses01"))
    assert report.splits == {"test": 2, "train": 5}
    # Extra columns, numbers as written in the evaluation file.
    assert manifest.columns[:5] == ["path", "label", "speaker", "gender", "split"]
    m003 = rows["Ses01F_impro01_M003"]
    assert (m003.get("dialog"), m003.get("session"), m003.get("start"), m003.get("end")) == (
        "Ses01F_impro01",
        "1",
        "4.0000",
        "6.1000",
    )
    assert (m003.get("valence"), m003.get("activation"), m003.get("dominance")) == (
        "2.5000",
        "3.0000",
        "3.5000",
    )
    # Drops per reason, warnings for the missing wav and sessions.
    assert report.dropped == {"label fru": 1, "label xxx": 1, "missing wav": 1}
    assert any("Ses01F_impro01_F003.wav" in w for w in report.warnings)
    assert any("Session2, Session3, Session4 not found" in w for w in report.warnings)
    assert "wrote 7 rows" in report.summary() and "label fru 1" in report.summary()


def test_iemocap_output_is_deterministic(tmp_path: Path) -> None:
    root = make_iemocap(tmp_path / "IEMOCAP_full_release")
    import_iemocap(root, tmp_path / "a.csv")
    import_iemocap(root, tmp_path / "a2.csv")
    text = (tmp_path / "a.csv").read_text(encoding="utf-8")
    assert text == (tmp_path / "a2.csv").read_text(encoding="utf-8")
    paths = [line.split(",")[0] for line in text.splitlines()[1:]]
    assert paths == sorted(paths)
    assert not list(tmp_path.glob(".*.tmp"))


def test_iemocap_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    root = make_iemocap(tmp_path / "IEMOCAP_full_release")
    bad = root / "Session5" / "dialog" / "EmoEvaluation" / "Ses05F_impro02.txt"
    lines = bad.read_text().splitlines()
    lines.insert(3, "[7.0 - 8.0]\tSes05F_impro02_F012\tneu")  # no V/A/D bracket
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match=r"Ses05F_impro02\.txt line 4: malformed"):
        import_iemocap(root, tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize(
    ("make", "missing"),
    [
        (lambda root: root.mkdir(), "Session1 not found"),
        (lambda root: (root / "Session1").mkdir(parents=True), "EmoEvaluation not found"),
        (lambda root: None, "folder not found"),
    ],
)
def test_iemocap_bad_root(tmp_path: Path, make, missing: str) -> None:
    root = tmp_path / "wrong"
    make(root)
    with pytest.raises(ManifestError, match=missing) as exc:
        import_iemocap(root, tmp_path / "m.csv")
    assert "\n" not in str(exc.value)
    if "Session" in missing or "EmoEvaluation" in missing:
        assert "IEMOCAP_full_release" in str(exc.value)


# --- FAU Aibo ----------------------------------------------------------------------------

AIBO_LABELS = [
    ("Ohm_01_001_00", "N", "1.0", True),
    ("Ohm_01_002_01", "A", "0.6", True),
    ("Ohm_02_010_00", "E", "0.8", True),
    ("Ohm_02_011_00", "P", "1.0", False),  # wav missing
    ("Mont_01_001_00", "R", "0.4", True),
    ("Mont_03_004_02", "N", "1.0", True),
]


def make_aibo(root: Path, speaker_info: bool = True) -> Path:
    labels = root / "labels" / "IS2009EmotionChallenge" / "chunk_labels_5cl_corpus.txt"
    labels.parent.mkdir(parents=True)
    labels.write_text("".join(f"{c} {lab} {conf}\n" for c, lab, conf, _ in AIBO_LABELS))
    for chunk, _, _, has_wav in AIBO_LABELS:
        if has_wav:
            _wav(root / "wav" / f"{chunk}.wav")
    if speaker_info:
        info = root / "misc" / "speaker_info.txt"
        info.parent.mkdir()
        info.write_text("speaker\tgender\tage\nOhm_01\tm\t11\nOhm_02\tf\t12\nMont_01\tw\t10\n")
    return root


def test_aibo_import(tmp_path: Path) -> None:
    root = make_aibo(tmp_path / "IS2009EmotionChallenge")
    out = tmp_path / "aibo.csv"
    report = import_aibo(root, out, genders=True)
    manifest = read_manifest(out)
    rows = {Path(r.rel_path).stem: r for r in manifest}
    assert sorted(rows) == sorted(c for c, _, _, has in AIBO_LABELS if has)
    assert rows["Ohm_01_002_01"].get("label") == "angry"
    assert rows["Ohm_02_010_00"].get("label") == "emphatic"
    assert rows["Mont_01_001_00"].get("label") == "rest"
    assert rows["Ohm_01_001_00"].get("speaker") == "Ohm_01"
    assert rows["Mont_03_004_02"].get("speaker") == "Mont_03"
    assert {k: r.get("split") for k, r in rows.items()} == {
        "Ohm_01_001_00": "train",
        "Ohm_01_002_01": "train",
        "Ohm_02_010_00": "train",
        "Mont_01_001_00": "test",
        "Mont_03_004_02": "test",
    }
    assert rows["Ohm_01_001_00"].gender == "m"
    assert rows["Ohm_02_010_00"].gender == "f"
    assert rows["Mont_01_001_00"].gender == "f"  # German "w" (weiblich)
    assert rows["Mont_03_004_02"].gender is None  # not in the speaker file
    assert rows["Ohm_01_002_01"].get("confidence") == "0.6"
    assert rows["Ohm_01_002_01"].get("raw_label") == "A"
    assert rows["Ohm_01_001_00"].rel_path == "IS2009EmotionChallenge/wav/Ohm_01_001_00.wav"
    assert report.dropped == {"missing wav": 1}
    assert any("Ohm_02_011_00" in w for w in report.warnings)
    assert any("Mont_03" in w for w in report.warnings)


def test_aibo_without_speaker_info_leaves_gender_empty(tmp_path: Path) -> None:
    root = make_aibo(tmp_path / "aibo", speaker_info=False)
    import_aibo(root, tmp_path / "aibo.csv")
    assert all(r.gender is None for r in read_manifest(tmp_path / "aibo.csv"))


def test_aibo_gender_is_off_unless_asked_and_the_dev_split_is_selectable(tmp_path: Path) -> None:
    from cuelab.cli import main

    root = make_aibo(tmp_path / "aibo")  # misc/speaker_info.txt is there
    dev = tmp_path / "dev.txt"
    dev.write_text("# dev speakers and chunks\nOhm_02\nOhm_01_001_00\nOhm_77\n")
    out = tmp_path / "aibo.csv"
    assert main(["import", "aibo", str(root), "-o", str(out), "--dev-list", str(dev)]) == 0
    manifest = read_manifest(out)
    assert all(r.gender is None for r in manifest)
    splits = {Path(r.rel_path).stem: r.get("split") for r in manifest}
    assert splits == {
        "Ohm_01_001_00": "dev", "Ohm_01_002_01": "train", "Ohm_02_010_00": "dev",
        "Mont_01_001_00": "test", "Mont_03_004_02": "test",
    }  # fmt: skip
    assert sorted(Path(r.rel_path).stem for r in manifest.split("dev")) == [
        "Ohm_01_001_00", "Ohm_02_010_00"]  # fmt: skip
    report = import_aibo(root, out, dev_list=dev)
    assert any("speaker_info.txt found but not used" in w for w in report.warnings)
    assert any("Ohm_77" in w for w in report.warnings)
    assert main(["import", "aibo", str(root), "-o", str(out), "--genders"]) == 0
    assert {r.gender for r in read_manifest(out)} == {"m", "f", None}


def test_aibo_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"chunk_labels_5cl_corpus\.txt not found"):
        import_aibo(tmp_path, tmp_path / "m.csv")
    root = make_aibo(tmp_path / "aibo")
    labels = root / "labels" / "IS2009EmotionChallenge" / "chunk_labels_5cl_corpus.txt"
    labels.write_text(labels.read_text() + "Ohm_09_001_00 X 1.0\n")
    with pytest.raises(ManifestError, match=r"chunk_labels_5cl_corpus\.txt line 7"):
        import_aibo(root, tmp_path / "m.csv")
    with pytest.raises(ManifestError, match="speaker info file not found"):
        import_aibo(root, tmp_path / "m.csv", speaker_info=tmp_path / "nope.txt")


# --- folders and CSV safety ------------------------------------------------------------------


def make_folders(root: Path) -> Path:
    _wav(root / "angry" / "spk1_a.wav")
    _wav(root / "angry" / "deep" / "spk2_b.wav")
    _wav(root / "=cmd" / "spk1_c.wav")
    (root / "sad").mkdir()
    sf.write(root / "sad" / "spk3_d.flac", np.zeros(1600, np.float32), SR)
    _wav(root / "loose.wav")  # not in a class folder
    _wav(root / ".hidden" / "x.wav")
    (root / "angry" / "notes.txt").write_text("not audio")
    return root


def test_folders_import_and_neutralised_csv(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "clips")
    out = root / "manifest.csv"
    report = import_folders(root, out, speaker_regex=r"(?P<speaker>spk\d+)_")
    text = out.read_text(encoding="utf-8")
    # The formula-like class is quoted in the label cell; its path gets ./ and still resolves.
    assert "./=cmd/spk1_c.wav,'=cmd," in text
    manifest = read_manifest(out)
    rows = {Path(r.rel_path).name: r for r in manifest}
    assert sorted(rows) == ["spk1_a.wav", "spk1_c.wav", "spk2_b.wav", "spk3_d.flac"]
    assert rows["spk1_c.wav"].path.is_file()
    assert rows["spk1_c.wav"].get("label") == "=cmd"  # neutralised on disk, restored on read
    assert rows["spk2_b.wav"].get("label") == "angry"
    assert rows["spk3_d.flac"].get("label") == "sad"
    assert rows["spk2_b.wav"].get("speaker") == "spk2"
    assert report.dropped == {"not in a class folder": 1}
    assert report.labels == {"=cmd": 1, "angry": 2, "sad": 1}


def test_folders_without_regex_and_bad_regex(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "clips")
    import_folders(root, tmp_path / "m.csv")
    assert all(not r.get("speaker") for r in read_manifest(tmp_path / "m.csv"))
    with pytest.raises(ManifestError, match="named group"):
        import_folders(root, tmp_path / "m.csv", speaker_regex=r"spk\d+")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match="no audio files"):
        import_folders(empty, tmp_path / "m.csv")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+cmd", "'+cmd"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-3.5", "-3.5"),
        ("+1e3", "+1e3"),
        ("-inf", "-inf"),
        ("angry", "angry"),
        ("", ""),
    ],
)
def test_neutralise_cell(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


def test_writer_keeps_rows_on_one_line_and_replaces_atomically(tmp_path: Path) -> None:
    text = render_manifest(
        [{"path": "a.wav", "label": "x\ny", "note": "=1"}], ["path", "label", "note"]
    )
    assert text.splitlines() == ["path,label,note", "a.wav,x y,'=1"]
    _wav(tmp_path / "a.wav")
    out = tmp_path / "m.csv"
    out.write_text("old")
    write_manifest(out, [{"path": str(tmp_path / "a.wav"), "label": "x"}], ["note"])
    assert out.read_text().splitlines()[0] == "path,label,speaker,gender,split,note"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "m.csv"]  # no temp file left
    assert len(read_manifest(out)) == 1


# --- command line ----------------------------------------------------------------------------


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_folders(tmp_path / "clips")
    out = tmp_path / "m.csv"
    assert main(["import", "folders", str(root), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("folders: wrote 4 rows")
    assert main(["import", "iemocap", str(tmp_path / "clips"), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "IEMOCAP_full_release" in err[0]
