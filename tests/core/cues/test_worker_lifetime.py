"""Feature worker processes live no longer than the process that started them.

These run the real ``cuelab eval`` in its own session and signal it, as a
shell, a job scheduler or a user at the terminal would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cuelab.core.runs import read_record
from tests.conftest import REPO
from tests.core.runs.test_emotion_runs import make_manifest


def _session(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry))
    return found


def _extracting(tmp_path: Path) -> subprocess.Popen[bytes]:
    """An eval with a fresh feature cache, started in its own session, once it has workers."""
    manifest = make_manifest(tmp_path / "data")
    env = {**os.environ, "CUELAB_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "cuelab", "eval", "--manifest", str(manifest), "--model",
            "reference", "--conditions", "audio-only", "--workers", "2", "--no-plots",
            "--out", str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(_session(proc.pid)) >= 4:  # cuelab, the forkserver and its workers
            return proc
        assert proc.poll() is None, proc.communicate()[1].decode()
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the eval never started its feature workers")


def _gone(sid: int, within_s: float) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := _session(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_kill_9_during_extraction_leaves_no_process_and_no_open_pipe(tmp_path: Path) -> None:
    proc = _extracting(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    left = _gone(proc.pid, within_s=10)
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert left == []
    # Nothing holds the eval's stdout any more: `cuelab eval ... | tee log` ends.
    assert proc.stdout is not None and proc.stdout.read() is not None


@pytest.mark.parametrize(
    ("sig", "group"), [(signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGTERM, False)]
)
def test_a_signal_stops_cleanly_in_one_line(tmp_path: Path, sig: int, group: bool) -> None:
    """Ctrl-C at a terminal signals every process in the group, workers included;
    ``kill PID`` (a scheduler, a user) signals the main process alone."""
    proc = _extracting(tmp_path)
    (os.killpg if group else os.kill)(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert text.strip().splitlines()[-1].startswith(("cuelab: interrupted", "cuelab: terminated"))
    assert _gone(proc.pid, within_s=10) == []
    assert read_record(tmp_path / "run")["status"] == "interrupted"
    again = subprocess.run([*proc.args, "--resume"], cwd=REPO, capture_output=True, text=True,
                           env={**os.environ, "CUELAB_CACHE_DIR": str(tmp_path / "cache")},
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert read_record(tmp_path / "run")["status"] == "complete"
