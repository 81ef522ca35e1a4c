"""Run folders a hostile or unlucky user hands to ``cuelab eval``: the real command each time.

A lock file that is a symbolic link to someone else's file, a folder of other
work, an empty ``--out`` (an unset shell variable), and a run folder the system
will not let us write (immutable, ``chattr +i``). Each ends in one line
``cuelab: error: ...`` naming the folder, and nothing outside it is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import eval_args
from tests.cli.test_hostile_inputs import one_line


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry of ``folder`` (the folder itself as ``.``): mode, size, mtime in ns."""
    out = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        st = path.lstat()
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_the_lock_is_never_written_through_a_symbolic_link(
    manifest: Path, finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "thesis.tex"
    victim.write_text("keep me\n")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".cuelab.lock").symlink_to(victim)
    one_line(capsys, eval_args(manifest, fresh), str(fresh / ".cuelab.lock"), "symbolic link")
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / ".cuelab.lock").unlink()
    (run / ".cuelab.lock").symlink_to(victim)
    one_line(capsys, eval_args(manifest, run, "--resume"), "symbolic link")
    assert victim.read_text() == "keep me\n"
    assert sorted(p.name for p in fresh.iterdir()) == [".cuelab.lock"]


def test_a_hard_linked_lock_file_is_refused(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me\n")
    run = tmp_path / "run"
    run.mkdir()
    os.link(victim, run / ".cuelab.lock")
    one_line(capsys, eval_args(manifest, run), "hard link")
    assert victim.read_text() == "keep me\n"


def test_a_refused_folder_is_left_exactly_as_it_was(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    (mine / "chapter").mkdir(parents=True)
    (mine / "thesis.tex").write_text("keep me")
    (mine / "chapter" / "one.tex").write_text("and me")
    before = snapshot(mine)
    one_line(capsys, eval_args(manifest, mine), str(mine), "holds no CueLab run")
    assert snapshot(mine) == before
    assert not (mine / ".cuelab.lock").exists()


def test_an_empty_out_is_refused(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    for empty in ("", "  "):
        one_line(capsys, eval_args(manifest, empty), "--out is empty")
    assert list(here.iterdir()) == []


@pytest.fixture
def immutable(finished: Path, tmp_path: Path) -> Iterator[Path]:
    """A finished run whose folder the system refuses to change (``chattr +i``)."""
    run = tmp_path / "frozen"
    shutil.copytree(finished, run)
    # the test command installs e2fsprogs (chattr) and runs as root: no skip
    assert shutil.which("chattr") is not None, "chattr (Debian e2fsprogs) is missing"
    made = subprocess.run(["chattr", "+i", str(run)], capture_output=True, text=True)
    assert made.returncode == 0, f"cannot make a folder immutable here: {made.stderr}"
    try:
        yield run
    finally:
        subprocess.run(["chattr", "-i", str(run)], check=True)


def test_a_refused_write_names_the_folder_not_a_temporary_file(
    manifest: Path, immutable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (immutable / "predictions.csv").read_bytes()
    line = one_line(capsys, eval_args(manifest, immutable, "--resume"), str(immutable))
    assert ".tmp" not in line and "Operation not permitted" in line
    assert (immutable / "predictions.csv").read_bytes() == before
    assert not [p for p in immutable.iterdir() if p.name.endswith(".tmp")]


def test_predictions_that_are_a_link_are_never_appended_to(
    manifest: Path, finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "elsewhere.csv"
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    shutil.move(run / "predictions.csv", victim)
    lines = victim.read_text().splitlines()
    victim.write_text("\n".join(lines[: len(lines) // 2]) + "\n")  # a run cut half-way
    before = victim.read_bytes()
    (run / "predictions.csv").symlink_to(victim)
    one_line(capsys, eval_args(manifest, run, "--resume"), "predictions.csv is a symbolic link")
    assert victim.read_bytes() == before


def test_a_lock_file_that_is_a_folder_is_named(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    (run / ".cuelab.lock").mkdir(parents=True)
    one_line(capsys, eval_args(manifest, run), ".cuelab.lock is a folder")
