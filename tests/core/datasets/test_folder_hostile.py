"""A dropped folder with odd files beside the clips: a FIFO, a link to /dev/zero, a name
with a line break. Real FIFOs and devices; the folder must open without blocking."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cuelab.core.datasets import read_manifest
from cuelab.core.datasets.folders import FOLDER_MANIFEST, manifest_for_folder, open_folder
from tests.core.datasets.test_folder_manifest import clips


def _open_within(root: Path, seconds: float = 60.0):  # type: ignore[no-untyped-def]
    """``open_folder(root)`` in a thread: a blocked read fails the test instead of hanging it."""
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["value"] = open_folder(root)
        except BaseException as exc:  # handed to the test
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "open_folder blocked"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def test_a_fifo_and_a_link_to_dev_zero_named_csv_neither_block_nor_fill_memory(
    tmp_path: Path,
) -> None:
    clips(
        tmp_path, {"angry/a1.flac": "spk01_f_angry_01.flac", "sad/s1.flac": "spk01_f_sad_01.flac"}
    )
    os.mkfifo(tmp_path / "notes.csv")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "angry" / "pipe.flac")  # not a clip either
    opened = _open_within(tmp_path)
    assert opened.path == tmp_path / FOLDER_MANIFEST
    manifest = read_manifest(opened.path)
    assert sorted(r.rel_path for r in manifest.rows) == ["angry/a1.flac", "sad/s1.flac"]
    skipped = "\n".join(opened.skipped)
    assert "notes.csv is left out" in skipped and "not a regular file" in skipped
    assert "zero.csv is left out" in skipped


def test_a_manifest_beside_a_fifo_still_opens(tmp_path: Path) -> None:
    clips(tmp_path, {"a.flac": "spk01_f_angry_01.flac"})
    (tmp_path / "mine.csv").write_text("path,label\na.flac,angry\n", encoding="utf-8")
    os.mkfifo(tmp_path / "other.csv")
    assert _open_within(tmp_path).path == tmp_path / "mine.csv"


def test_one_name_with_a_line_break_is_skipped_and_the_rest_opens(tmp_path: Path, caplog) -> None:
    clips(tmp_path, {"angry/a1.flac": "spk01_f_angry_01.flac",
                     "angry/two\nlines.flac": "spk01_f_angry_02.flac",
                     "sad/s1.flac": "spk01_f_sad_01.flac"})  # fmt: skip
    opened = _open_within(tmp_path)
    assert opened.skipped == ["'angry/two\\nlines.flac': a file name with a line break is left out"]
    rows = read_manifest(opened.path).rows
    assert sorted(r.rel_path for r in rows) == ["angry/a1.flac", "sad/s1.flac"]
    caplog.set_level("WARNING")
    assert manifest_for_folder(tmp_path) == opened.path  # the window's entry point logs it
    assert "line break" in caplog.text


def test_a_name_that_is_not_utf8_is_skipped_and_the_rest_opens(tmp_path: Path) -> None:
    clips(tmp_path, {"angry/a1.flac": "spk01_f_angry_01.flac"})
    odd = os.fsdecode(b"angry/b\xff.flac")
    (tmp_path / odd).write_bytes((tmp_path / "angry" / "a1.flac").read_bytes())
    opened = _open_within(tmp_path)
    assert len(opened.skipped) == 1 and "not UTF-8 is left out" in opened.skipped[0]
    assert [r.rel_path for r in read_manifest(opened.path).rows] == ["angry/a1.flac"]
