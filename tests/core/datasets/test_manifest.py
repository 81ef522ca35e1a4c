from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.core.datasets import read_manifest
from cuelab.core.errors import ManifestError
from tests.conftest import REPO


def write(tmp_path: Path, text: str, files: tuple[str, ...] = ("a.wav", "b.wav")) -> Path:
    for f in files:
        (tmp_path / f).write_bytes(b"x")
    m = tmp_path / "m.csv"
    m.write_text(text, encoding="utf-8")
    return m


def test_reads_rows_resolves_paths_and_keeps_unknown_columns(tmp_path: Path) -> None:
    m = write(tmp_path, "path,label,gender,extra\na.wav,sad,F,x1\nb.wav,angry,,x2\n")
    man = read_manifest(m)
    assert len(man) == 2 and man.columns == ["path", "label", "gender", "extra"]
    assert man.rows[0].path == (tmp_path / "a.wav").resolve()
    assert man.rows[0].gender == "f" and man.rows[1].gender is None
    assert man.rows[1].get("extra") == "x2"
    assert man.rows[0].utt_id == "a"
    assert len(man.sha256) == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("label\nsad\n", "no 'path' column"),
        ("path,gender\na.wav,x\n", "row 1, column 'gender': 'x' is not m, f or empty"),
        ("path\na.wav\nmissing.wav\n", "row 2, column 'path': file not found"),
        ("path\na.wav\na.wav\n", "row 2, column 'path': duplicate of row 1"),
        ("path,snr_db\na.wav,loud\n", "row 1, column 'snr_db': 'loud' is not a number"),
        ("path\n", "no rows"),
        ("path,label\na.wav,sad,extra\n", "row 1: more cells than columns"),
    ],
)
def test_bad_rows_name_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        read_manifest(write(tmp_path, text))


def test_missing_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.csv")
    bad = tmp_path / "latin.csv"
    bad.write_bytes("path,label\n\xe9.wav,x\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(bad)


def test_demo_manifest_is_valid() -> None:
    man = read_manifest(REPO / "assets/demo/manifest.csv")
    assert {r.get("split") for r in man} == {"train", "test"}
    assert len(man.split("test")) < len(man.split("train"))


def test_quoted_cells_may_hold_commas_and_line_breaks(tmp_path: Path) -> None:
    m = write(tmp_path, 'path,transcript\na.wav,"Hello, world\nsecond line"\nb.wav,x\n')
    man = read_manifest(m)
    assert man.rows[0].get("transcript") == "Hello, world\nsecond line"
    assert man.rows[1].index == 2


def test_neutralised_cells_are_restored_but_paths_are_not(tmp_path: Path) -> None:
    m = write(tmp_path, "path,label,note\na.wav,'=cmd,'hello\nb.wav,''@x,-3\n")
    man = read_manifest(m)
    assert man.rows[0].get("label") == "=cmd"
    assert man.rows[0].get("note") == "'hello"  # not a neutralised formula: kept as written
    assert man.rows[1].get("label") == "'@x"  # a quoted-looking cell round-trips
    assert man.rows[1].get("note") == "-3"
