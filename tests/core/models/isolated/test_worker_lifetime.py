"""Nothing a worker starts outlives CueLab; a worker gets only the allowed environment.

Real worker processes (the probe handler inside ``worker/main.py``) start real
children (``sleep``) that hold the protocol pipe; CueLab is killed with a real
``kill -9``. What is checked: the whole process group ends, and a worker that
exits while its child keeps the pipe open is reported at once, not after the
request timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cuelab.core.models.base import Clip
from cuelab.core.models.isolated.client import WorkerCommand, WorkerCrashed
from tests.conftest import REPO
from tests.core.models.isolated.test_worker_protocol import LABELS, TASK, adapter, tone

#: ms-clap's refusal once the safety gate lets a location through (no environment built)
NOT_BUILT = "ms-clap' runs in its own environment, which is not built"


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    """The PIDs still running after ``seconds`` (killed then, so no test leaves them)."""
    deadline = time.monotonic() + seconds
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in pids if running(p)]
    for pid in left:
        os.kill(pid, 9)
    return left


def child_pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_worker_that_exits_while_its_child_holds_the_pipe_is_reported_at_once(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "children.txt"
    model = adapter(
        tmp_path, timeout=120.0, child_on=[1], exit_after_child=True, child_pids=str(pids)
    )
    started = time.monotonic()
    try:
        with pytest.raises(WorkerCrashed) as info:
            model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
        took = time.monotonic() - started
    finally:
        model.unload()
    message = str(info.value)
    assert "probe worker exited (code 4) during score_labels" in message
    assert "its child runs on" in message and "\n" not in message
    assert took < 60, took  # far below the 120 s request timeout: the process was watched
    children = child_pids(pids)
    assert len(children) == 1
    assert wait_gone(children) == []  # the group was ended: the child holding the pipe too


def test_closing_a_worker_ends_the_processes_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "children.txt"
    model = adapter(tmp_path, child_on=[1], child_pids=str(pids))
    try:
        assert model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])[0].label in LABELS
        children = child_pids(pids)
        assert len(children) == 1 and running(children[0])
    finally:
        model.unload()
    assert wait_gone(children) == []


def test_kill_9_of_cuelab_ends_the_worker_and_its_children(tmp_path: Path) -> None:
    """CueLab killed while its worker computes and the worker's child runs: all of them end."""
    pids = tmp_path / "children.txt"
    script = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "from tests.core.models.isolated.test_worker_protocol import Clip, TASK, LABELS, "
        "adapter, tone\n"
        f"model = adapter(Path({str(tmp_path)!r}), hang_on=[1], child_on=[1], "
        f"child_pids={str(pids)!r})\n"
        "clip = Clip(tone(), 16000)\n"
        "threading.Thread(target=model.score_labels, args=(clip, TASK, LABELS, [None]),"
        " daemon=True).start()\n"
        f"while not Path({str(pids)!r}).exists():\n"
        "    time.sleep(0.01)\n"
        "print(model.worker.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=str(REPO))  # fmt: skip
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    time.sleep(0.1)
    children = child_pids(pids)
    assert running(worker) and len(children) == 1 and running(children[0])
    parent.kill()
    parent.wait(timeout=10)
    assert wait_gone([worker, *children]) == []


def test_a_worker_sees_only_the_allowed_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An allow-list, not a deny-list: a secret under any name stays in CueLab."""
    monkeypatch.setenv("MY_DATABASE_PASSWORD", "pw-123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-456")
    monkeypatch.setenv("https_proxy", "http://user:proxy-789@proxy:3128")
    monkeypatch.setenv("HF_TOKEN", "hf-000")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/cuelab")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("SITE_MODEL_CACHE", "/data/cache")
    monkeypatch.setenv("CUELAB_WORKER_ENV", "SITE_MODEL_CACHE")
    seen = tmp_path / "env.json"
    model = adapter(tmp_path, env_to=str(seen))
    try:
        model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
    finally:
        model.unload()
    given = json.loads(seen.read_text())
    text = json.dumps(given)
    for secret in ("pw-123", "aws-456", "proxy-789", "hf-000", "/somewhere/cuelab"):
        assert secret not in text
    assert given["LC_ALL"] == "C.UTF-8" and given["HF_HOME"] == str(tmp_path / "hf")
    assert given["SITE_MODEL_CACHE"] == "/data/cache"  # named by the user
    assert given["PATH"] == os.environ["PATH"] and given["HF_HUB_OFFLINE"] == "1"
    assert set(given) - set(WorkerCommand("python", "x").environment(True)) <= {
        "LC_CTYPE"  # Python may set it at start-up (PEP 538 locale coercion)
    }


# ----------------------------------------------------------------------------- the pickle gate


def _pickle_checkpoint(path: Path) -> Path:
    import torch

    torch.save({"weight": torch.zeros(2)}, path)  # a zip holding data.pkl, as releases are
    return path


def _safetensors(path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(path))
    return path


@pytest.fixture
def no_envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No environment is built: a location the gate lets through fails at "not built"."""
    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))


def _refused(location: Path, needle: str) -> str:
    from cuelab.core.errors import ModelError
    from cuelab.core.models.base import LoadOptions
    from cuelab.core.models.registry import load_model

    with pytest.raises(ModelError) as info:
        load_model(f"ms-clap:{location}")
    from cuelab.cli.remedies import cli_text

    message = cli_text(info.value)
    assert "--allow-pickle" in message and needle in message and "\n" not in message
    with pytest.raises(ModelError, match=NOT_BUILT):  # passes the gate
        load_model(f"ms-clap:{location}", LoadOptions(allow_pickle=True))
    return message


def test_a_decoy_safetensors_beside_a_pickle_does_not_open_the_gate(
    tmp_path: Path, no_envs: None
) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    _pickle_checkpoint(folder / "CLAP_weights_2023.pth")
    (folder / "decoy.safetensors").write_bytes(b"")
    _refused(folder, "CLAP_weights_2023.pth is a pickle checkpoint")


def test_a_pickle_named_safetensors_is_refused_by_its_content(
    tmp_path: Path, no_envs: None
) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    _pickle_checkpoint(folder / "model.safetensors")
    _refused(folder, "model.safetensors is a pickle checkpoint named like safetensors")
    _refused(folder / "model.safetensors", "named like safetensors")


def test_a_link_is_judged_by_the_file_it_points_to(tmp_path: Path, no_envs: None) -> None:
    real = _pickle_checkpoint(tmp_path / "hidden-away.bin")
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "weights.safetensors").symlink_to(real)
    _refused(folder, f"(a link to {real})")
    linked = tmp_path / "linked-folder"
    linked.symlink_to(folder)
    _refused(linked, "a link to")


def test_real_safetensors_pass_the_gate(tmp_path: Path, no_envs: None) -> None:
    from cuelab.core.errors import ModelError
    from cuelab.core.models.isolated.adapter import sniff_weights
    from cuelab.core.models.registry import load_model

    folder = tmp_path / "release"
    folder.mkdir()
    _safetensors(folder / "model.safetensors")
    (folder / "config.json").write_text("{}")
    assert sniff_weights(folder / "model.safetensors") == "safetensors"
    assert sniff_weights(_pickle_checkpoint(tmp_path / "x.pt")) == "pickle"
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    assert sniff_weights(fifo) == "other"  # never opened for a blocking read
    with pytest.raises(ModelError, match=NOT_BUILT):
        load_model(f"ms-clap:{folder}")


def test_a_link_loop_in_the_folder_is_walked_once(tmp_path: Path, no_envs: None) -> None:
    folder = tmp_path / "release"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "again").symlink_to(folder)  # release/sub/again/sub/again/...
    _safetensors(folder / "model.safetensors")
    from cuelab.core.errors import ModelError
    from cuelab.core.models.registry import load_model

    with pytest.raises(ModelError, match=NOT_BUILT):  # no hang
        load_model(f"ms-clap:{folder}")
    _pickle_checkpoint(folder / "sub" / "extra.bin")
    _refused(folder, "extra.bin is a pickle checkpoint")


def test_sigterm_during_a_request_ends_the_worker_group_at_once(tmp_path: Path) -> None:
    """SIGTERM (raised as an exception, as the command line does) while the worker is busy:
    the worker and its child end at once, not after a polite close times out."""
    pids = tmp_path / "children.txt"
    script = (
        "import signal, sys, time\n"
        "from pathlib import Path\n"
        "from tests.core.models.isolated.test_worker_protocol import Clip, TASK, LABELS, "
        "adapter, tone\n"
        "class Terminated(KeyboardInterrupt): pass\n"
        "def on_term(*_): raise Terminated()\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        f"model = adapter(Path({str(tmp_path)!r}), hang_on=[1], child_on=[1], "
        f"child_pids={str(pids)!r})\n"
        "print(model.worker.pid, flush=True)\n"
        "try:\n"
        "    model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])\n"
        "except Terminated:\n"
        "    started = time.monotonic()\n"
        "    model.unload()\n"
        "    print('unloaded in %.1f s' % (time.monotonic() - started), flush=True)\n"
        "    sys.exit(143)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=str(REPO))  # fmt: skip
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())
    deadline = time.monotonic() + 60
    while not child_pids(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = child_pids(pids)
    assert len(children) == 1
    proc.send_signal(15)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143
    seconds = float(out.split()[-2])
    assert seconds < 5, out  # the close did not wait on a worker that cannot answer
    assert wait_gone([worker, *children]) == []
