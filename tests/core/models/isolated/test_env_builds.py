"""``cuelab env create`` under real signals, a real second build and a real full disk.

GitHub cannot be reached here, so the first step of a ``git:`` recipe (paraclap)
is a ``git`` on PATH that waits on a child process, as a clone over a slow
network does; it writes the PIDs of what it started. Every test runs the real
``cuelab`` command in a subprocess and sends it real signals. The full disk is a
tmpfs in a private mount namespace, filled by pip copying a wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuelab.core.models.isolated import envs
from tests.conftest import REPO
from tests.core.models.isolated.test_worker_lifetime import running, wait_gone

SLOW_GIT = """#!/bin/sh
echo $$ >> "$CUELAB_TEST_PIDS"
sleep 600 &
echo $! >> "$CUELAB_TEST_PIDS"
if [ -n "$CUELAB_TEST_ESCAPE" ]; then
    setsid sh -c 'echo $$ >> "$CUELAB_TEST_ESCAPED"; exec sleep 600' &
fi
wait
"""


@pytest.fixture
def slow_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The environment of a ``cuelab env create paraclap`` whose clone never ends."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text(SLOW_GIT)
    (fake / "git").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
        "CUELAB_ENVS": str(tmp_path / "envs"),
        "CUELAB_TEST_PIDS": str(tmp_path / "pids"),
        "CUELAB_TEST_ESCAPED": str(tmp_path / "escaped"),
        "PYTHONPATH": str(REPO),
    }
    monkeypatch.setenv("CUELAB_ENVS", env["CUELAB_ENVS"])
    yield env
    wait_gone(pids(tmp_path / "escaped"), 0)  # no test leaves a survivor behind


def pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def create(env: dict[str, str], family: str = "paraclap") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cuelab", "env", "create", family],
                            cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip


def wait_for(path: Path, count: int, proc: subprocess.Popen[str]) -> list[int]:
    deadline = time.monotonic() + 120
    while len(pids(path)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build never reached its clone"
        time.sleep(0.05)
    return pids(path)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("cuelab:")]


@pytest.mark.parametrize(("sig", "code", "said"), [
    (signal.SIGTERM, 143, "cuelab: terminated (SIGTERM); "),
    (signal.SIGINT, 130, "cuelab: interrupted; "),
])  # fmt: skip
def test_a_signal_stops_the_build_and_every_process_it_started(
    slow_git: dict[str, str], tmp_path: Path, sig: int, code: int, said: str
) -> None:
    proc = create(slow_git)
    started = wait_for(tmp_path / "pids", 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert errors(err) == [
        said + "the unfinished environment is rebuilt from scratch by: cuelab env create paraclap"
    ]
    assert "--resume" not in err and "Traceback" not in err
    assert wait_gone(started) == []
    status = envs.env_status("paraclap")
    assert status.state == envs.BROKEN and "did not finish" in status.reason


def test_kill_9_stops_the_build_and_a_retry_may_build_again(
    slow_git: dict[str, str], tmp_path: Path
) -> None:
    proc = create(slow_git)
    first = wait_for(tmp_path / "pids", 2, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert wait_gone(first) == []  # the steps' supervisor ended their whole group
    again = create(slow_git)  # the lock went with them: the retry gets to its clone
    try:
        wait_for(tmp_path / "pids", 4, again)
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    assert wait_gone(pids(tmp_path / "pids")) == []


def test_a_second_build_of_the_same_family_is_refused_naming_the_first(
    slow_git: dict[str, str], tmp_path: Path
) -> None:
    first = create(slow_git)
    try:
        wait_for(tmp_path / "pids", 2, first)
        marker = tmp_path / "envs" / "paraclap" / envs.BUILDING
        before = marker.stat().st_mtime_ns, marker.read_text()
        second = create(slow_git)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 1, err
        assert errors(err) == [
            f"cuelab: error: cuelab env create paraclap is already running (PID {first.pid}); "
            "wait for it to finish or stop it"
        ]
        assert (marker.stat().st_mtime_ns, marker.read_text()) == before  # not rebuilt
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)


def test_a_retry_never_rebuilds_under_a_survivor_of_the_earlier_build(
    slow_git: dict[str, str], tmp_path: Path
) -> None:
    """A process of the build that left its group (setsid) survives kill -9 of CueLab; it
    still holds the build's lock, so the retry is refused and the folder is left alone."""
    env = {**slow_git, "CUELAB_TEST_ESCAPE": "1"}
    proc = create(env)
    wait_for(tmp_path / "pids", 2, proc)
    survivor = wait_for(tmp_path / "escaped", 1, proc)[0]
    proc.kill()
    proc.wait(timeout=30)
    assert wait_gone(pids(tmp_path / "pids")) == []
    assert running(survivor)
    retry = create(slow_git)
    _, err = retry.communicate(timeout=120)
    assert retry.returncode == 1, err
    lines = errors(err)
    assert len(lines) == 1 and f"(PID {proc.pid}, which has ended) still runs" in lines[0]
    assert len(pids(tmp_path / "pids")) == 2  # the retry started nothing
    os.kill(survivor, signal.SIGKILL)
    wait_gone([survivor])


def test_a_symlinked_environment_folder_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cuelab.cli import main

    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))
    elsewhere = tmp_path / "important"
    elsewhere.mkdir()
    (elsewhere / "data.txt").write_text("keep me")
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "ms-clap").symlink_to(elsewhere)
    for argv in (["env", "create", "ms-clap"],
                 ["env", "create", "ms-clap", "--dir", str(tmp_path / "envs" / "ms-clap")]):  # fmt: skip
        assert main(argv) == 1
        lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
        assert lines == [
            f"cuelab: error: {tmp_path / 'envs' / 'ms-clap'} is a symbolic link; an environment "
            "is built only in a real folder (remove the link, or pass --dir with the folder it "
            "points to)"
        ]
    assert [p.name for p in elsewhere.iterdir()] == ["data.txt"]
    assert main(["env", "list", "--json"]) == 0
    listed = {d["family"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert listed["ms-clap"]["state"] == "broken"
    assert "symbolic link" in listed["ms-clap"]["reason"]


def test_env_list_shows_every_family_when_one_marker_is_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cuelab.cli import main

    root = tmp_path / "envs"
    monkeypatch.setenv("CUELAB_ENVS", str(root))
    for family, content in (("ms-clap", "{not json"), ("laion-clap", "[1, 2]"),
                            ("pengi", '{"packages": ["torch"]}'), ("paraclap", b"\xff\xfe")):  # fmt: skip
        (root / family).mkdir(parents=True)
        marker = root / family / envs.MARKER
        marker.write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / "mga-clap").mkdir()
    os.mkfifo(root / "mga-clap" / envs.MARKER)  # never read: it would block
    (root / "kimi-audio.link").write_bytes(b"/some\0where\n")
    assert main(["env", "list", "--json"]) == 0
    rows = {d["family"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(rows) == 8
    assert "not valid JSON" in rows["ms-clap"]["reason"]
    assert "not a JSON object" in rows["laion-clap"]["reason"]
    assert "'packages' is not a JSON object" in rows["pengi"]["reason"]
    assert "not UTF-8" in rows["paraclap"]["reason"]
    assert "not a regular file" in rows["mga-clap"]["reason"]
    assert "kimi-audio.link" in rows["kimi-audio"]["reason"]
    for family in ("ms-clap", "laion-clap", "pengi", "paraclap", "mga-clap", "kimi-audio"):
        assert rows[family]["state"] == "broken"
    assert rows["step-audio-2-mini"]["state"] == "missing"
    assert main(["env", "list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8


# ----------------------------------------------------------------------------- a full disk


def _tmpfs_works(where: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{where}'"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


def fake_torch_wheel(folder: Path, megabytes: int) -> Path:
    """A valid wheel named like a local CPU torch build, ``megabytes`` of incompressible data."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "torch-2.13.0+cpu-py3-none-any.whl"
    info = "torch-2.13.0+cpu.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as whl:
        whl.writestr("torch/__init__.py", "__version__ = '2.13.0+cpu'\n")
        whl.writestr("torch/blob.bin", os.urandom(megabytes << 20))
        whl.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0+cpu\n"
        )
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")  # fmt: skip
        whl.writestr(f"{info}/RECORD", "")
    return path


def test_a_full_disk_is_named_and_no_truncated_wheel_is_installed(tmp_path: Path) -> None:
    """A 48 MiB file system: the venv fits, the 64 MiB torch wheel pip copies does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    # root and util-linux's unshare, which the test command has: a real full disk, no skip
    assert _tmpfs_works(disk), "no tmpfs mount in a private namespace (needs root and unshare)"
    wheels = tmp_path / "wheels"
    fake_torch_wheel(wheels, 64)
    target = disk / "env"
    found = tmp_path / "found.txt"
    script = (
        f"mount -t tmpfs -o size=48m tmpfs '{disk}' || exit 99; \"$@\"; rc=$?; "
        f"find '{disk}' -name 'torch*' > '{found}'; ls '{target}' >> '{found}'; exit $rc"
    )
    env = {**os.environ, "CUELAB_ENVS": str(tmp_path / "envs"), "PIP_FIND_LINKS": str(wheels),
           "PIP_NO_INDEX": "1", "CUELAB_TORCH": "cpu", "PYTHONPATH": str(REPO)}  # fmt: skip
    cmd = ["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "cuelab", "env",
           "create", "ms-clap", "--dir", str(target)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert errors(proc.stderr) == [
        f"cuelab: error: {target}: No space left on device (during: find torch); free some "
        "space and run cuelab env create ms-clap again"
    ], proc.stderr
    left = found.read_text().split()
    assert not [x for x in left if x.endswith(".whl") or "/site-packages/torch" in x], left
    assert envs.BUILDING in left and envs.MARKER not in left  # an unfinished build, marked
