"""One writer per run folder, damaged records named not dropped, user files left alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cuelab.core.reports.build import build_report
from cuelab.core.runs import RunConfigError, run_eval
from cuelab.core.runs.csvio import CorruptTableError, read_complete_rows
from tests.conftest import REPO
from tests.core.runs.test_emotion_runs import config, make_manifest, rows

HOLD = """
import sys, time
from pathlib import Path
from cuelab.core.runs.folder import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def finished(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "done"
    run_eval(config(manifest, out, conditions=["audio-only", "correct"], seeds=[0]))
    return out


def _eval(manifest: Path, out: Path, *more: str) -> subprocess.Popen[str]:
    args = ["eval", "--manifest", str(manifest), "--model", "reference", "--conditions",
            "audio-only,correct,shuffle", "--seeds", "0,1", "--workers", "1", "--bootstrap", "50",
            "--no-plots", "--out", str(out), *more]  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "cuelab", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_a_second_writer_is_refused_with_the_holder_s_pid(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=REPO, text=True,
                              stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for more in ((), ("--resume",)):
            proc = _eval(manifest, out, *more)
            _, err = proc.communicate(timeout=120)
            errors = [line for line in err.splitlines() if line.startswith("cuelab: error:")]
            assert proc.returncode == 1 and len(errors) == 1
            assert f"in use by another CueLab process (PID {holder.pid})" in errors[0]
        assert not (out / "predictions.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    # the OS released the lock with the killed holder: the run goes ahead
    proc = _eval(manifest, out)
    assert proc.wait(120) == 0


def test_two_runs_started_together_are_not_both_accepted(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "race"
    procs = [_eval(manifest, out) for _ in range(2)]
    codes = [p.wait(180) for p in procs]
    assert sorted(codes) == [0, 1]
    table = rows(out)
    keys = [tuple(r[i] for i in (0, 3, 4, 5)) for r in table[1:]]
    assert len(keys) == len(set(keys)) == 16 * (2 + 2)  # nothing doubled, nothing lost


def test_a_malformed_record_mid_file_is_named_and_repaired(
    manifest: Path, finished: Path, tmp_path: Path
) -> None:
    run = tmp_path / "damaged"
    shutil.copytree(finished, run)
    path = run / "predictions.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[5] = "garbage,without,enough,cells\n"  # line 6 of the file
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(
        CorruptTableError, match=r"predictions.csv: line 6 is not a complete record"
    ):
        read_complete_rows(path)
    with pytest.raises(CorruptTableError, match="cuelab repair"):
        build_report(run)
    with pytest.raises(CorruptTableError, match="line 6"):
        run_eval(config(manifest, run, conditions=["audio-only", "correct"], seeds=[0]),
                 resume=True)  # fmt: skip
    assert path.read_text(encoding="utf-8").count("\n") == len(lines)  # nothing was cut
    proc = subprocess.run([sys.executable, "-m", "cuelab", "repair", str(run)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "1 moved aside" in proc.stderr
    assert "garbage,without" in (run / "predictions.quarantine.csv").read_text(encoding="utf-8")
    run_eval(config(manifest, run, conditions=["audio-only", "correct"], seeds=[0]), resume=True)
    assert sorted(map(tuple, rows(run))) == sorted(map(tuple, rows(finished)))


def test_only_a_torn_last_record_is_dropped(finished: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    text = (finished / "predictions.csv").read_text(encoding="utf-8")
    path.write_text(text + "spk,cut,sho", encoding="utf-8")  # cut short: no line end
    _, kept, good = read_complete_rows(path)
    assert len(kept) == text.count("\n") - 1 and good == len(text.encode("utf-8"))
    # A last record that has its line end but too few cells was damaged, not torn.
    path.write_text(text + "spk,cut,short\n", encoding="utf-8")
    with pytest.raises(CorruptTableError, match=f"line {text.count(chr(10)) + 1} "):
        read_complete_rows(path)


def test_a_folder_with_someone_else_s_files_is_refused(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.csv").write_text("my,own,table\n", encoding="utf-8")
    with pytest.raises(RunConfigError, match=r"not empty and holds no CueLab run \(summary.csv\)"):
        run_eval(config(manifest, out, conditions=["audio-only"], seeds=[0]))
    assert (out / "summary.csv").read_text(encoding="utf-8") == "my,own,table\n"
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]  # no lock file left in it
    with pytest.raises(RunConfigError, match="'out' is empty"):
        run_eval(replace(config(manifest, tmp_path / "x", conditions=["audio-only"]), out=" "))


def test_the_lock_does_not_outlive_its_process(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "k"
    proc = _eval(manifest, out)
    deadline = time.monotonic() + 60
    while not (out / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, 9)
    proc.wait(30)
    again = _eval(manifest, out, "--resume")
    assert again.wait(180) == 0


def _broken_manifest(tmp_path: Path) -> tuple[Path, Path]:
    manifest = make_manifest(tmp_path / "data")
    clip = manifest.parent / "spk01_f_sad_01.flac"
    target = clip.resolve()
    clip.unlink()  # a symbolic link to the demo clip: replace it with a corrupt copy
    clip.write_bytes(target.read_bytes()[:200])  # a FLAC header and nothing else
    return manifest, clip


def test_a_corrupt_clip_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    manifest, clip = _broken_manifest(tmp_path)
    out = tmp_path / "run"
    proc = _eval(manifest, out)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 3, err
    assert "1 clip(s) could not be scored" in err and "errors.csv" in err
    errors = (out / "errors.csv").read_text(encoding="utf-8").splitlines()
    assert errors[0] == "utt_id,path,model,stage,error" and len(errors) == 2
    assert errors[1].startswith("spk01_f_sad_01,spk01_f_sad_01.flac,,features,")
    table = rows(out)
    utts = {r[0] for r in table[1:]}
    assert len(utts) == 15 and "spk01_f_sad_01" not in utts
    assert (out / "summary.csv").exists()  # the report of what was scored
    # the clip is mended: --resume scores it, and errors.csv goes away
    clip.unlink()
    clip.symlink_to(REPO / "assets" / "demo" / "spk01_f_sad_01.flac")
    again = _eval(manifest, out, "--resume")
    assert again.wait(180) == 0
    assert {r[0] for r in rows(out)[1:]} == utts | {"spk01_f_sad_01"}
    assert not (out / "errors.csv").exists()


def test_fail_fast_stops_at_the_first_corrupt_clip(tmp_path: Path) -> None:
    manifest, _ = _broken_manifest(tmp_path)
    proc = _eval(manifest, tmp_path / "run", "--fail-fast")
    _, err = proc.communicate(timeout=180)
    errors = [line for line in err.splitlines() if line.startswith("cuelab: error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "spk01_f_sad_01.flac" in errors[0]


def test_sigterm_stops_a_run_cleanly_and_it_resumes(tmp_path: Path) -> None:
    """A slow run (a served model with 0.2 s per request) is stopped mid-way by SIGTERM."""
    import signal

    from cuelab.core.models import tiny
    from cuelab.core.runs import read_record
    from tests.servers.openai_audio import AudioChatServer, ServerOptions

    manifest = make_manifest(tmp_path / "data")
    server = AudioChatServer(
        tiny.build_qwen2_audio(tmp_path / "model"), ServerOptions(latency_s=0.2)
    )
    url = server.start()
    out = tmp_path / "run"
    args = ["eval", "--manifest", str(manifest), "--model", f"openai:{url}", "--conditions",
            "audio-only,correct", "--workers", "1", "--concurrency", "1", "--no-plots",
            "--out", str(out)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("CUELAB_API_KEY", "OPENAI_API_KEY")}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "cuelab", *args], cwd=REPO, env=env,
                                text=True, stderr=subprocess.PIPE)  # fmt: skip
        preds = out / "predictions.csv"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if preds.exists() and preds.read_text(encoding="utf-8").count("\n") >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err
        assert err.strip().splitlines()[-1].startswith("cuelab: terminated (SIGTERM)")
        assert "Traceback" not in err
        assert read_record(out)["status"] == "interrupted"
        assert 0 < preds.read_text(encoding="utf-8").count("\n") - 1 < 16 * 2
        server.options.latency_s = 0.0
        again = subprocess.run([sys.executable, "-m", "cuelab", *args, "--resume"], cwd=REPO,
                               env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert read_record(out)["status"] == "complete"
        assert len(rows(out)) - 1 == 16 * 2
    finally:
        server.stop()
