"""A fuzz pass over the command line, as a hostile or unlucky user would drive it.

Every case runs the real ``cuelab`` entry point on real files (broken
manifests, damaged run folders, odd paths, deep JSON, wrong encodings). Each
must end with exit status 1 or 2 and exactly one line, ``cuelab: error: ...``,
that names what is wrong: never a traceback, never ``internal error``, never a
hang, and never a silent success on input that is wrong. Cases that need real
processes (a full disk, FIFOs) live at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from tests.cli.conftest import eval_args
from tests.conftest import REPO
from tests.core.runs.test_emotion_runs import make_manifest

DEMO = REPO / "assets" / "demo"
CLIP = DEMO / "spk01_f_angry_01.flac"


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    """Run ``cuelab ARGV``; assert one ``cuelab: error:`` line holding ``needles``."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert code in (1, 2), (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("cuelab: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(finished, dest)
    return dest


# --- where the run goes --------------------------------------------------------


def test_out_is_an_existing_file(manifest: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "results.txt"
    target.write_text("mine")
    one_line(capsys, eval_args(manifest, target), str(target), "not a folder")
    assert target.read_text() == "mine"


def test_out_under_a_file(manifest: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("mine")
    one_line(capsys, eval_args(manifest, blocker / "run"), str(blocker))


def test_out_where_nothing_may_be_created(manifest: Path, capsys) -> None:
    one_line(capsys, eval_args(manifest, "/proc/cuelab-run"), "/proc/cuelab-run")


def test_out_with_a_nul_byte(manifest: Path, capsys) -> None:
    one_line(capsys, eval_args(manifest, "runs/a\0b"), "NUL")


# --- manifests -----------------------------------------------------------------


def _manifest(folder: Path, text: str | bytes, name: str = "m.csv") -> Path:
    path = folder / name
    for spk, lab in (("spk01_f", "angry"), ("spk01_f", "sad")):
        link = folder / f"{spk}_{lab}_01.flac"
        if not link.exists():
            link.symlink_to(DEMO / link.name)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


GOOD_ROWS = "spk01_f_angry_01.flac,angry,spk01\nspk01_f_sad_01.flac,sad,spk01\n"

MANIFESTS: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "huge_cell": ("path,label,speaker,note\n" + GOOD_ROWS.replace("\n", ",x" + "y" * 140_000 + "\n", 1),
                  ("m.csv", "longer than")),
    "nul_in_path": ("path,label,speaker\nspk01_f_angry_01\0.flac,angry,spk01\n" + GOOD_ROWS,
                    ("m.csv", "NUL")),
    "unbalanced_quote": ('path,label,speaker\n"spk01_f_angry_01.flac,angry,spk01\n' + GOOD_ROWS,
                         ("m.csv", "quote")),
    "duplicated_header": ("path,label,label,speaker\n" + GOOD_ROWS.replace(",spk01", ",x,spk01"),
                          ("m.csv", "label", "twice")),
    "newline_in_name": ('path,label,speaker\n"spk01\nf.wav",angry,spk01\n' + GOOD_ROWS,
                        ("m.csv", "\\n")),
    "latin1": (b"path,label,speaker,note\n" + GOOD_ROWS.replace("\n", ",caf\xe9\n", 1).encode("latin-1"),
               ("m.csv", "UTF-8")),
    "binary": (bytes(range(256)) * 8, ("m.csv",)),
    "header_only": ("path,label,speaker\n", ("m.csv", "no rows")),
    "no_path_column": ("file,label,speaker\n" + GOOD_ROWS, ("m.csv", "path")),
    "missing_clip": ("path,label,speaker\nnope.wav,angry,spk01\n" + GOOD_ROWS, ("nope.wav",)),
    "empty_label": ("path,label,speaker\nspk01_f_angry_01.flac,,spk01\nspk01_f_sad_01.flac,sad,spk01\n",
                    ("m.csv", "label")),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_broken_manifests(case: str, tmp_path: Path, capsys) -> None:
    text, needles = MANIFESTS[case]
    path = _manifest(tmp_path, text)
    one_line(capsys, eval_args(path, tmp_path / "run"), *needles)
    assert not (tmp_path / "run" / "predictions.csv").exists()


def test_a_manifest_that_is_a_folder_or_a_device(tmp_path: Path, capsys) -> None:
    one_line(capsys, eval_args(tmp_path, tmp_path / "run"), str(tmp_path))
    one_line(capsys, eval_args("/dev/zero", tmp_path / "run"), "/dev/zero")


# --- norms, configs ------------------------------------------------------------


NORMS: dict[str, str] = {
    "deep": "[" * 100_000 + "]" * 100_000,
    "not_json": "{ median: 1 }",
    "a_list": "[1, 2, 3]",
    "strings": json.dumps({"descriptors": {"F0semitoneFrom27.5Hz_sma3nz_amean": "high"}}),
    "empty": "",
}


@pytest.mark.parametrize("case", sorted(NORMS))
def test_broken_norms(case: str, tmp_path: Path, capsys) -> None:
    norms = tmp_path / "norms.json"
    norms.write_text(NORMS[case], encoding="utf-8")
    one_line(capsys, ["tokens", "--norms", str(norms), str(CLIP)], "norms.json")


TOMLS: dict[str, str] = {
    "syntax": 'manifest = "m.csv\n',
    "deep": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "unknown_key": 'manifest = "m.csv"\nmodels = ["reference"]\nconditons = ["audio-only"]\nout = "r"\n',
    "wrong_type": 'manifest = "m.csv"\nmodels = "reference"\nconditions = 7\nout = "r"\n',
    "binary": "\x00\x01\x02",
}


@pytest.mark.parametrize("case", sorted(TOMLS))
def test_broken_run_configs(case: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.toml"
    path.write_text(TOMLS[case], encoding="utf-8")
    one_line(capsys, ["eval", str(path)], "run.toml")


# --- damaged run folders -------------------------------------------------------


def _garbage_cr_tail(run: Path) -> None:
    with open(run / "predictions.csv", "ab") as fh:
        fh.write(b"spk01_f_angry_01\rgarbage\r\x00\xff")


def _record_without_config(run: Path) -> None:
    record = json.loads((run / "run.json").read_text())
    del record["config"]
    (run / "run.json").write_text(json.dumps(record))


DAMAGE: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "record_without_config": (_record_without_config, ("run.json", "config")),
    "record_not_json": (lambda r: (r / "run.json").write_text("{"), ("run.json",)),
    "record_a_list": (lambda r: (r / "run.json").write_text("[]"), ("run.json",)),
    "record_deep": (lambda r: (r / "run.json").write_text("[" * 100_000 + "]" * 100_000), ("run.json",)),
    "no_predictions": (lambda r: (r / "predictions.csv").unlink(), ("predictions.csv",)),
    "nul_mid_file": (lambda r: (r / "predictions.csv").write_bytes(
        (r / "predictions.csv").read_bytes().replace(b"\n", b"\n\x00\x00", 3)), ("predictions.csv", "line")),
    "predictions_a_folder": (lambda r: ((r / "predictions.csv").unlink(), (r / "predictions.csv").mkdir()),
                             ("predictions.csv",)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_run_folders_for_report(case: str, run_copy: Path, capsys) -> None:
    damage, needles = DAMAGE[case]
    damage(run_copy)
    one_line(capsys, ["report", str(run_copy), "--no-plots"], *needles)


def test_a_garbage_tail_with_bare_cr_is_dropped_as_a_torn_last_record(
    run_copy: Path, finished: Path, capsys
) -> None:
    """Only the last record is torn (no newline after it): report and resume both go on."""
    _garbage_cr_tail(run_copy)
    assert main(["report", str(run_copy), "--no-plots"]) == 0
    a = (run_copy / "summary.csv").read_text()
    assert a == (finished / "summary.csv").read_text()
    capsys.readouterr()


@pytest.mark.parametrize("case", ["record_without_config", "record_not_json", "nul_mid_file"])
def test_damaged_run_folders_for_resume(case: str, run_copy: Path, manifest: Path, capsys) -> None:
    damage, needles = DAMAGE[case]
    damage(run_copy)
    one_line(capsys, eval_args(manifest, run_copy, "--resume"), *needles)


def test_a_latin1_annotation_sidecar_is_named_before_the_run(
    manifest: Path, tmp_path: Path, capsys
) -> None:
    data = tmp_path / "data"
    shutil.copytree(manifest.parent, data, symlinks=True)
    side = data / "manifest.annotations.csv"
    side.write_bytes("path,annotator_label,note,updated\nspk01_f_angry_01.flac,angry,caf\xe9,\n"
                     .encode("latin-1"))  # fmt: skip
    one_line(capsys, eval_args(data / "manifest.csv", tmp_path / "run"), str(side), "UTF-8")
    assert not (tmp_path / "run" / "predictions.csv").exists()


# --- audio paths ---------------------------------------------------------------


def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path: Path, capsys) -> None:
    odd = tmp_path / "two\nlines.wav"
    odd.write_bytes(b"not audio at all" * 100)
    one_line(capsys, ["tokens", str(odd)], "two\\nlines.wav")
    one_line(capsys, ["tokens", str(tmp_path / "gone\nmissing.wav")], "gone\\nmissing.wav")


def test_audio_that_is_a_folder_or_a_device(tmp_path: Path, capsys) -> None:
    one_line(capsys, ["tokens", str(tmp_path)], "not a regular file")
    one_line(capsys, ["tokens", "/dev/zero"], "/dev/zero")
    one_line(capsys, ["predict", "/dev/null", "--model", "reference"], "/dev/null")


def test_audio_with_absurd_headers(tmp_path: Path, capsys) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    code = main(["tokens", "--json", str(silent)])  # silence is audio: tokens, not a crash
    assert code == 0 and json.loads(capsys.readouterr().out)["path"] == str(silent)
    loud = tmp_path / "inf.wav"
    sf.write(loud, np.full(16000, np.inf, np.float32), 16000, subtype="FLOAT")
    one_line(capsys, ["tokens", str(loud)], "inf.wav")
    rate = tmp_path / "rate.wav"
    sf.write(rate, np.zeros(100, np.float32), 1, subtype="PCM_16")
    one_line(capsys, ["tokens", str(rate)], "rate.wav")


# --- real processes: a full disk, signals ----------------------------------------


def _limited(cmd: list[str], fsize: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` where no file may grow past ``fsize`` bytes (EFBIG: a write fails as on a
    full disk)."""

    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit)  # fmt: skip


def _tmpfs_available(where: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{where}'"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


def test_a_full_disk_names_the_file_and_the_rows_written_survive(tmp_path: Path) -> None:
    """A real full file system (a 16 KiB tmpfs in a private mount namespace) where the
    machine allows mounts; otherwise a file-size limit, which fails the same writes.
    The log is on the full disk too: no "Logging error" may reach the terminal."""
    manifest = make_manifest(tmp_path / "data", copies=3)  # 96 rows: over 3 pages of CSV
    env = {**os.environ, "CUELAB_LOG_DIR": str(tmp_path / "disk" / "logs")}
    cuelab = [sys.executable, "-m", "cuelab"]
    disk, out = tmp_path / "disk", tmp_path / "run"
    disk.mkdir()
    if _tmpfs_available(disk):
        script = (f"mount -t tmpfs -o size=16k tmpfs '{disk}' || exit 99; \"$@\"; rc=$?; "
                  f"cp -a '{disk}/run' '{out}'; exit $rc")  # fmt: skip
        cmd = [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            *cuelab,
            *eval_args(manifest, disk / "run"),
        ]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        folder, problem = disk / "run", "No space left on device"
    else:
        proc = _limited([*cuelab, *eval_args(manifest, out)], fsize=4000, env=env)
        folder, problem = out, "File too large"
    assert proc.returncode == 1, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0] in {f"cuelab: error: {folder / name}: {problem}"
                        for name in ("predictions.csv", "run.json")}, proc.stderr  # fmt: skip
    written = (out / "predictions.csv").read_text().splitlines()
    assert 2 < len(written) < 1 + 48 * 2  # rows written before the disk filled up are there
    again = subprocess.run([*cuelab, *eval_args(manifest, out, "--resume")], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    rows = (out / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + 48 * 2 and len(set(rows)) == len(rows)
    assert rows[: len(written) - 1] == written[:-1]  # the rows before the failure are kept


def test_a_fifo_as_manifest_or_norms_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for argv in (eval_args(fifo, tmp_path / "run"), ["tokens", "--norms", str(fifo), str(CLIP)]):
        proc = subprocess.run([sys.executable, "-m", "cuelab", *argv], cwd=REPO,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode in (1, 2) and str(fifo) in proc.stderr, proc.stderr
        assert proc.stderr.count("cuelab: error:") == 1
