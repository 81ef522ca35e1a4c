"""The worker protocol with a real worker process (CueLab's own Python, a small real model).

The probe handler (``handlers/probe_handler.py``) runs inside the real worker
script (``worker/main.py``) as a subprocess; it crashes, hangs or writes on
stdout when its plan says so. What is checked: one clear error line, the
worker stopped, stdout chatter kept out of the protocol, and a batch run that
replaces a dead worker once and ends with every clip exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.isolated.adapter import ContrastiveWorkerAdapter
from cuelab.core.models.isolated.client import (
    WORKER_DIR,
    WORKER_SCRIPT,
    WorkerCommand,
    WorkerCrashed,
    WorkerProcess,
)
from cuelab.core.models.isolated.worker import protocol
from cuelab.core.runs import config_from_mapping, run_eval
from cuelab.core.tasks.prompts import TaskPrompt
from tests.conftest import REPO

HANDLERS = Path(__file__).parent / "handlers"
sys.path.insert(0, str(WORKER_DIR))  # the probe imports the worker's ``protocol`` as a top module
sys.path.insert(0, str(HANDLERS))
import probe_handler  # noqa: E402

TASK = TaskPrompt("ser", "Which emotion? {labels}", "Which emotion? {labels} {tokens}")
LABELS = ("angry", "happy", "neutral", "sad")


def probe_command() -> WorkerCommand:
    return WorkerCommand(
        sys.executable, "probe", "probe_handler:ProbeHandler", extra_path=[str(HANDLERS)]
    )


class ProbeAdapter(ContrastiveWorkerAdapter):
    family: ClassVar[str] = "probe"


def plan(tmp_path: Path, **kw: Any) -> str:
    data = {"counter": str(tmp_path / "calls.txt"), **kw}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def tone(seconds: float = 1.0, sr: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def adapter(tmp_path: Path, restarts: int = 0, timeout: float = 60.0, **kw: Any) -> ProbeAdapter:
    options = LoadOptions(worker_restarts=restarts, request_timeout=timeout)
    return ProbeAdapter(probe_command(), plan(tmp_path, **kw), options)


def test_hello_reports_protocol_python_and_packages() -> None:
    worker = WorkerProcess(probe_command())
    try:
        hello = worker.start()
        assert hello["protocol"] == protocol.PROTOCOL_VERSION
        assert hello["python"] == ".".join(map(str, sys.version_info[:3]))
        assert hello["packages"]["numpy"] == np.__version__
        assert hello["pid"] == worker.pid
    finally:
        worker.close()
    assert not worker.alive


def test_worker_scores_equal_the_same_model_in_process(tmp_path: Path) -> None:
    model = adapter(tmp_path)
    try:
        clip = Clip(tone(), 16000, "a")
        preds = model.score_labels(clip, TASK, LABELS, [None, "PITCH=HIGH"])
        texts = [model.label_template.format(label=lab) for lab in LABELS]
        local = probe_handler.scores([float(x) for x in tone()], texts)
        expected = np.exp(local["logits"]) / np.exp(local["logits"]).sum()
        for pred in preds:  # the tokens cannot reach a contrastive model: same answer
            assert [pred.probs[lab] for lab in LABELS] == pytest.approx(expected, rel=1e-6)
            assert pred.label == LABELS[int(np.argmax(expected))]
        assert model.label_prompts(LABELS)["sad"] == "a person speaking in a sad voice"
        assert "not applicable" in model.token_note()
        scenes, events = model.score_sseu(clip, ["park", "street_traffic"], ["dog", "car_horn"])
        assert sum(scenes.values()) == pytest.approx(1.0)
        event_texts = ["the sound of dog", "the sound of car horn"]
        cos = probe_handler.scores([float(x) for x in tone()], event_texts)["cosine"]
        assert [events["dog"], events["car_horn"]] == pytest.approx(
            [1 / (1 + np.exp(-c)) for c in cos], rel=1e-6
        )
        described = model.describe()
        assert described["packages"]["numpy"] == np.__version__
        assert described["protocol"] == protocol.PROTOCOL_VERSION
    finally:
        model.unload()


def test_audio_goes_over_at_the_model_rate(tmp_path: Path) -> None:
    model = adapter(tmp_path, sample_rate=48000)
    try:
        assert model.sample_rate == 48000
        payload = model.audio_payload(Clip(tone(1.0, 16000), 16000))
        data, _, sr = protocol.audio_from_payload(payload)
        assert sr == 48000 and data is not None and len(data) == 4 * 48000
    finally:
        model.unload()


def test_a_crash_mid_run_is_one_error_line(tmp_path: Path) -> None:
    model = adapter(tmp_path, crash_on=[2])
    clip = Clip(tone(), 16000)
    model.score_labels(clip, TASK, LABELS, [None])
    with pytest.raises(WorkerCrashed) as info:
        model.score_labels(clip, TASK, LABELS, [None])
    message = str(info.value)
    assert "\n" not in message
    assert "probe worker exited (code 3) during score_labels" in message
    assert "probe: exiting on call 2" in message  # its last stderr line
    assert model.worker is not None and not model.worker.alive
    model.unload()


def test_a_hung_worker_times_out_and_is_stopped(tmp_path: Path) -> None:
    model = adapter(tmp_path, timeout=1.5, hang_on=[1])
    worker = model.worker
    assert worker is not None
    with pytest.raises(WorkerCrashed, match=r"did not answer score_labels within 1.5 s"):
        model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
    assert not worker.alive
    model.unload()


def test_stdout_chatter_goes_to_the_log_not_the_protocol(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="cuelab.worker.probe")
    model = adapter(tmp_path, print_on=[1])
    try:
        preds = model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
        assert preds[0].label in LABELS
    finally:
        model.unload()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "chatter from a library on stdout" in logged
    assert "raw bytes on fd 1" in logged
    assert "probe loaded" in logged


def test_garbage_on_the_protocol_stream_stops_the_worker(tmp_path: Path) -> None:
    model = adapter(tmp_path, garbage_on=[1])
    worker = model.worker
    assert worker is not None
    with pytest.raises(WorkerCrashed, match="broke the protocol during score_labels") as info:
        model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
    assert "this is not a protocol line" in str(info.value)
    assert not worker.alive
    model.unload()


def test_a_model_error_is_one_line_and_the_worker_lives_on(tmp_path: Path) -> None:
    model = adapter(tmp_path)
    try:
        path_audio = {"path": "/nowhere.wav", "sr": 16000}
        assert model.worker is not None
        with pytest.raises(ModelError, match="probe: ValueError: the probe takes samples"):
            model.worker.call("score_labels", {"audio": path_audio, "texts": ["x"]})
        with pytest.raises(ModelError, match="family probe does not serve generate"):
            model.worker.call("generate", {"prompt": "x"})
        assert model.worker.alive
        assert model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])[0].label in LABELS
    finally:
        model.unload()


def test_the_worker_answers_a_bad_line_and_goes_on() -> None:
    """Raw bytes into the real worker script: a bad line gets an error, the next works."""
    argv = [sys.executable, "-E", "-s", str(WORKER_SCRIPT), "--family", "ms-clap"]
    proc = subprocess.run(
        [*argv, "--handler", "wk_msclap:MsClapHandler"],
        input=b'not json\n{"id": 1, "op": "hello", "args": {}}\n{"id": 2, "op": "close", "args": {}}\n',
        capture_output=True,
        timeout=60,
    )
    lines = [json.loads(s) for s in proc.stdout.decode().splitlines()]
    assert lines[0]["ok"] is False and lines[0]["kind"] == "request"
    assert lines[1]["ok"] is True and lines[1]["result"]["family"] == "ms-clap"
    assert lines[2] == {"id": 2, "ok": True, "result": {}}
    assert proc.returncode == 0


# ----------------------------------------------------------------------------- batch runs


def manifest(folder: Path) -> Path:
    demo = Path(__file__).resolve().parents[4] / "assets" / "demo"
    lines = ["path,label,speaker,gender"]
    for spk in ("spk01_f", "spk04_m"):
        for lab in LABELS:
            src = demo / f"{spk}_{lab}_01.flac"
            (folder / src.name).symlink_to(src)
            lines.append(f"{src.name},{lab},{spk},{spk[-1]}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "manifest.csv"


def probe_loader(plan_path: str) -> Any:
    def load(spec: str, options: LoadOptions) -> ProbeAdapter:
        return ProbeAdapter(probe_command(), plan_path, options)

    return load


def run_config(data: Path, out: Path) -> Any:
    return config_from_mapping(
        {
            "manifest": str(data),
            "models": ["ms-clap:/probe"],
            "conditions": "audio-only,correct",
            "seeds": [0],
            "out": str(out),
            "bootstrap": 50,
            "workers": 1,
        },
        base_dir=None,
    )


def predictions(out: Path) -> list[dict[str, str]]:
    with open(out / "predictions.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_batch_run_replaces_a_dead_worker_once_and_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    data = manifest(tmp_path / "data")
    clean = tmp_path / "clean"
    clean.mkdir()
    run_eval(run_config(data, tmp_path / "run-clean"), loader=probe_loader(plan(clean)))
    crashy = tmp_path / "crashy"
    crashy.mkdir()
    run_eval(
        run_config(data, tmp_path / "run-crash"), loader=probe_loader(plan(crashy, crash_on=[4]))
    )
    assert (crashy / "calls.txt").read_text() == "9"  # 8 clips, the 4th sent twice
    want, got = predictions(tmp_path / "run-clean"), predictions(tmp_path / "run-crash")
    key = [(r["utt_id"], r["condition"]) for r in got]
    assert len(key) == len(set(key)) == 16  # every clip x condition once, none doubled
    assert got == want
    record = json.loads((tmp_path / "run-crash" / "run.json").read_text())
    described = record["models"]["ms-clap:/probe"]
    assert described["packages"]["numpy"] == np.__version__
    assert described["prompts"]["angry"] == "a person speaking in a angry voice"
    assert "not applicable" in described["tokens_note"]


def test_a_second_death_fails_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    data = manifest(tmp_path / "data")
    counter = tmp_path / "p"
    counter.mkdir()
    out = tmp_path / "run"
    plan_path = plan(counter, crash_on=[3, 4])  # the restarted worker dies on the retry too
    with pytest.raises(WorkerCrashed, match="exited"):
        run_eval(run_config(data, out), loader=probe_loader(plan_path))
    done = predictions(out)
    assert len(done) == 4  # two clips x two conditions before the crash
    run_eval(run_config(data, out), resume=True, loader=probe_loader(plan_path))
    rows = predictions(out)
    key = [(r["utt_id"], r["condition"]) for r in rows]
    assert len(key) == len(set(key)) == 16
    assert rows[:4] == done


def oldest_python() -> str:
    """The oldest Python 3.8+ on this machine (pyenv or PATH), else this one."""
    import glob
    import shutil

    for minor in range(8, sys.version_info.minor):
        found = sorted(glob.glob(str(Path.home() / f".pyenv/versions/3.{minor}*/bin/python")))
        found += [p for p in [shutil.which(f"python3.{minor}")] if p]
        if found:
            return found[0]
    return sys.executable


def test_the_worker_side_is_python_3_8_syntax() -> None:
    """protocol.py and main.py keep to 3.8, the oldest Python a family's recipe may use."""
    import ast

    worker = Path(protocol.__file__).parent
    for source in sorted(worker.glob("*.py")):
        ast.parse(source.read_text(encoding="utf-8"), str(source), feature_version=(3, 8))


def test_the_worker_side_runs_under_the_oldest_python_here(tmp_path: Path) -> None:
    """The worker loop and protocol under the oldest interpreter this machine has
    (3.8 here, under pyenv; on a machine with one Python, that one)."""
    python = oldest_python()
    command = WorkerCommand(python, "probe", "probe_handler:ProbeHandler", [str(HANDLERS)])
    model = ProbeAdapter(command, plan(tmp_path), LoadOptions())
    try:
        wanted = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert model.python == wanted
        clip = Clip(tone(), 16000)
        texts = [model.label_template.format(label=lab) for lab in LABELS]
        logits, _ = model.similarities(clip, texts)
        local = probe_handler.scores([float(x) for x in tone()], texts)
        assert logits == pytest.approx(local["logits"], rel=1e-9)
    finally:
        model.unload()


def test_the_per_call_timeout_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUELAB_WORKER_TIMEOUT", "1")
    model = adapter(tmp_path, timeout=600.0, hang_on=[1])
    with pytest.raises(WorkerCrashed, match=r"within 1 s"):
        model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
    model.unload()
    monkeypatch.setenv("CUELAB_WORKER_TIMEOUT", "soon")
    with pytest.raises(ModelError, match=r"CUELAB_WORKER_TIMEOUT must be a number of seconds"):
        adapter(tmp_path)


def test_families_are_refused_before_a_worker_starts(tmp_path: Path) -> None:
    """Pickles need allow_pickle; remote code needs trust_remote_code."""
    from cuelab.core.models.registry import load_model

    (tmp_path / "ltuas_long_noqa_a6.bin").write_bytes(b"not read")
    from cuelab.cli.remedies import cli_text
    from cuelab.core import errors

    with pytest.raises(ModelError, match=r"ltuas_long_noqa_a6\.bin is a pickle") as info:
        load_model(f"ltu-as:{tmp_path}")
    assert info.value.remedy == errors.ALLOW_PICKLE and "--allow-pickle" in cli_text(info.value)
    (tmp_path / "ltuas_long_noqa_a6.bin").unlink()
    weights = tmp_path / "CLAP_weights_2023.pth"
    weights.write_bytes(b"not read")
    with pytest.raises(ModelError, match=r"pickle checkpoint") as info:
        load_model(f"ms-clap:{weights}")
    assert info.value.remedy == errors.ALLOW_PICKLE and "--allow-pickle" in cli_text(info.value)
    for family in ("step-audio-2-mini", "kimi-audio"):
        with pytest.raises(ModelError, match="runs the release's own code") as info:
            load_model(f"{family}:{tmp_path}")
        assert info.value.remedy == errors.TRUST_REMOTE_CODE
        assert "--trust-remote-code" in cli_text(info.value)


def test_a_missing_environment_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cuelab.core.models.registry import load_model

    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))
    from cuelab.cli.remedies import cli_text
    from cuelab.core import errors

    with pytest.raises(ModelError, match="runs in its own environment, which is not built") as info:
        load_model(f"ms-clap:{tmp_path}", LoadOptions(allow_pickle=True))
    assert info.value.remedy == errors.build_env("ms-clap")
    assert cli_text(info.value).endswith("; run: cuelab env create ms-clap")
    broken = tmp_path / "envs" / "laion-clap"
    broken.mkdir(parents=True)
    (broken / "something").write_text("x")
    with pytest.raises(ModelError, match=r"broken: no cuelab-env\.json"):
        load_model(f"laion-clap:{tmp_path}", LoadOptions(allow_pickle=True))


def test_worker_shards_merge_to_the_unsharded_run(tmp_path: Path) -> None:
    from cuelab.core.runs import merge_runs, read_record

    (tmp_path / "data").mkdir()
    data = manifest(tmp_path / "data")
    counter = tmp_path / "p"
    counter.mkdir()
    load = probe_loader(plan(counter))

    from cuelab.core.runs import RunConfigError, parse_shard

    run_eval(run_config(data, tmp_path / "all"), loader=load)
    for i in (1, 2):
        config = run_config(data, tmp_path / f"s{i}")
        object.__setattr__(config, "shard", parse_shard(f"{i}/2"))
        run_eval(config, loader=load)
    # shards built on another machine: the environment lies elsewhere, the packages match
    record = read_record(tmp_path / "s2")
    record["models"]["ms-clap:/probe"]["env_path"] = "/other/machine/envs/ms-clap"
    (tmp_path / "s2" / "run.json").write_text(json.dumps(record), encoding="utf-8")
    merge_runs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")
    key = lambda r: (r["utt_id"], r["condition"])  # noqa: E731
    merged = sorted(predictions(tmp_path / "merged"), key=key)
    assert merged == sorted(predictions(tmp_path / "all"), key=key)
    record["models"]["ms-clap:/probe"]["packages"]["numpy"] = "0.0.1"
    (tmp_path / "s2" / "run.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(RunConfigError, match="differs in 'packages'"):
        merge_runs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged2")


def test_a_non_finite_score_is_one_model_error_and_the_worker_goes_on(tmp_path: Path) -> None:
    model = adapter(tmp_path, nan_on=[1])
    clip = Clip(tone(), 16000)
    try:
        with pytest.raises(ModelError) as info:
            model.score_labels(clip, TASK, LABELS, [None])
        assert not isinstance(info.value, WorkerCrashed)
        assert "JSON cannot carry" in str(info.value) and "\n" not in str(info.value)
        assert model.score_labels(clip, TASK, LABELS, [None])[0].label in LABELS  # same worker
    finally:
        model.unload()


def test_a_worker_killed_while_answering_is_reported_as_exited(tmp_path: Path) -> None:
    model = adapter(tmp_path, torn_on=[1])
    try:
        with pytest.raises(WorkerCrashed, match=r"exited \(code 137\) during score_labels"):
            model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
    finally:
        model.unload()


def test_a_request_over_the_line_limit_is_refused_before_it_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CueLab refuses it in one line; the worker never sees it and keeps serving."""
    model = adapter(tmp_path)
    try:
        monkeypatch.setattr(protocol, "MAX_LINE", 100_000)  # CueLab's side only
        with pytest.raises(ModelError, match=r"over the protocol's") as info:
            model.score_labels(Clip(tone(5.0), 16000), TASK, LABELS, [None])
        assert not isinstance(info.value, WorkerCrashed)
        monkeypatch.undo()
        assert model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])[0].label in LABELS
    finally:
        model.unload()


def test_the_worker_skips_an_over_long_line_with_one_error(tmp_path: Path) -> None:
    """Fed straight to the worker: one error for the long line, then the next answer."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER_DIR), str(HANDLERS)])}
    script = (
        "import sys, protocol, main\n"
        "protocol.MAX_LINE = 1000\n"
        "sys.exit(main.main(['--family', 'probe', '--handler', 'probe_handler:ProbeHandler']))\n"
    )
    long = b'{"id": 1, "op": "hello", "args": {"pad": "' + b"x" * 5000 + b'"}}\n'
    hello = protocol.encode(protocol.request(2, "hello", {}))
    proc = subprocess.run([sys.executable, "-c", script], input=long + hello, env=env,
                          capture_output=True, timeout=60)  # fmt: skip
    answers = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [a["ok"] for a in answers] == [False, True], proc.stdout
    assert "longer than 1000 bytes" in answers[0]["error"]
    assert answers[1]["id"] == 2


def test_credentials_stay_in_cuelab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CUELAB_API_KEY", "OPENAI_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(key, "sk-secret-123")
    seen = tmp_path / "env.json"
    model = adapter(tmp_path, env_to=str(seen))
    try:
        model.score_labels(Clip(tone(), 16000), TASK, LABELS, [None])
    finally:
        model.unload()
    given = json.loads(seen.read_text())
    assert "sk-secret-123" not in json.dumps(given)
    assert given["HF_HUB_OFFLINE"] == "1"  # the environment is otherwise passed on


def test_a_worker_busy_with_a_request_ends_when_cuelab_is_killed(tmp_path: Path) -> None:
    """kill -9 of CueLab while its worker computes: the worker does not run on (an idle
    worker ends at the end of its input; a busy one by watching its parent)."""
    script = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "from tests.core.models.isolated.test_worker_protocol import Clip, TASK, LABELS, "
        "adapter, tone\n"
        f"model = adapter(Path({str(tmp_path)!r}), hang_on=[1])\n"
        "clip = Clip(tone(), 16000)\n"
        "threading.Thread(target=model.score_labels, args=(clip, TASK, LABELS, [None]),"
        " daemon=True).start()\n"
        f"while not Path({str(tmp_path / 'calls.txt')!r}).exists():\n"
        "    time.sleep(0.01)\n"
        "print(model.worker.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=str(REPO))  # fmt: skip
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())

    def running() -> bool:
        try:
            return Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    assert running()
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = running()
    if left:
        os.kill(worker, 9)
    assert not left
