"""Batch runs with remote models: equal to in-process, fault-tolerant, resumable, keyless."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cuelab.core.runs import config_from_mapping, merge_runs, read_record, run_eval
from tests.conftest import REPO
from tests.core.models.remote.conftest import Serve
from tests.helpers import read_csv

DEMO = REPO / "assets" / "demo" / "manifest.csv"
SECRET = "sk-cuelab-test-5b1d9e"


def _config(out: Path, models: list[str], **extra: object):
    data = {
        "manifest": str(DEMO), "models": models, "out": str(out), "limit": 6,
        "conditions": ["audio-only", "correct", "shuffle"], "seeds": [0], "bootstrap": 50,
        "workers": 1, **extra,
    }  # fmt: skip
    return config_from_mapping(data, None)


def _rows(path: Path) -> list[dict[str, str]]:
    return read_csv(path / "predictions.csv")


def test_remote_rows_equal_in_process_rows(
    serve: Serve, qwen2_audio_dir: Path, tmp_path: Path
) -> None:
    _, url = serve()
    remote, local = f"openai:{url}", f"qwen2-audio:{qwen2_audio_dir}"
    out = tmp_path / "run"
    run_eval(_config(out, [remote, local], scoring="continuation", concurrency=4))
    rows = _rows(out)
    by = {(r["utt_id"], r["condition"], r["model"]): r for r in rows}
    assert len(by) == 6 * 3 * 2
    for (utt, cond, model), r in by.items():
        if model != remote:
            continue
        twin = by[(utt, cond, local)]
        assert r["scoring"] == twin["scoring"] == "continuation"
        assert r["prediction"] == twin["prediction"]
        probs = [c for c in r if c.startswith("p_")]
        assert probs == [
            "p_angry",
            "p_happy",
            "p_neutral",
            "p_sad",
        ]  # the manifest's, not the 6 clips'
        for col in probs:
            assert float(r[col]) == pytest.approx(float(twin[col]), abs=1e-5)
    described = read_record(out)["models"][remote]
    assert described["endpoints"] == [url] and described["model"] == "tiny/qwen2-audio"
    assert described["server_version"] == "0.0.0-cuelab-test"
    assert described["scoring"] == "continuation" and described["capabilities"]["prompt_logprobs"]


def test_injected_failures_lose_nothing(serve: Serve, tmp_path: Path) -> None:
    server, url = serve()
    spec = f"openai:{url}"
    run_eval(_config(tmp_path / "clean", [spec], concurrency=4))
    server.fail_every(3, [503, "drop", 500, 429])  # a flaky server: every third request fails
    run_eval(_config(tmp_path / "faulty", [spec], concurrency=4))
    assert server.stats.failed >= 5
    clean = (tmp_path / "clean" / "predictions.csv").read_bytes()
    assert (tmp_path / "faulty" / "predictions.csv").read_bytes() == clean
    assert {r["scoring"] for r in _rows(tmp_path / "clean")} == {"continuation"}  # auto


def test_shards_of_a_remote_run_merge_to_the_whole(serve: Serve, tmp_path: Path) -> None:
    _, url = serve()
    spec = f"openai:{url}"
    run_eval(_config(tmp_path / "whole", [spec]))
    for i in (1, 2):
        run_eval(_config(tmp_path / f"s{i}", [spec], shard=f"{i}/2"))
    merge_runs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")

    def rows(run: str) -> list[tuple[str, ...]]:
        return sorted(tuple(r.values()) for r in _rows(tmp_path / run))

    assert rows("merged") == rows("whole") and len(rows("whole")) == 6 * 3


def _cli(args: list[str], env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cuelab", *args], env=env, cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,  # type: ignore[call-overload]
    )  # fmt: skip


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CUELAB_API_KEY", "OPENAI_API_KEY")}
    env.update(CUELAB_LOG_DIR=str(tmp_path / "logs"), CUELAB_CACHE_DIR=str(tmp_path / "cache"))
    env.update(extra)
    return env


def _eval_args(url: str, out: Path, *more: str) -> list[str]:
    return ["eval", "--manifest", str(DEMO), "--model", f"openai:{url}", "--limit", "8",
            "--conditions", "audio-only,correct,shuffle", "--workers", "1", "--bootstrap", "50",
            "--no-plots", "--out", str(out), *more]  # fmt: skip


def test_kill_9_then_resume_is_exact(serve: Serve, tmp_path: Path) -> None:
    server, url = serve()
    env = _env(tmp_path)
    reference = _cli(_eval_args(url, tmp_path / "ref", "--concurrency", "4"), env)
    assert reference.wait(300) == 0, reference.stderr.read() if reference.stderr else ""
    server.options.latency_s = 0.25
    killed = _cli(_eval_args(url, tmp_path / "run", "--concurrency", "2"), env)
    predictions = tmp_path / "run" / "predictions.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if predictions.exists() and predictions.read_text().count("\n") >= 1 + 2 * 3:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    partial = predictions.read_text().count("\n") - 1
    assert 0 < partial < 8 * 3  # killed in the middle
    server.options.latency_s = 0.0
    resumed = _cli(_eval_args(url, tmp_path / "run", "--resume", "--concurrency", "3"), env)
    assert resumed.wait(300) == 0, resumed.stderr.read() if resumed.stderr else ""
    assert predictions.read_bytes() == (tmp_path / "ref" / "predictions.csv").read_bytes()


def test_the_api_key_is_never_written(serve: Serve, tmp_path: Path) -> None:
    server, url = serve(api_key=SECRET)
    env = _env(tmp_path, CUELAB_API_KEY=SECRET)
    proc = _cli(["--debug", *_eval_args(url, tmp_path / "run")], env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert SECRET in server.stats.bearer_tokens  # it was sent...
    assert SECRET not in out + err  # ...and never printed
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in written) and any(p.suffix == ".log" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    # a wrong key is one clear line, and the key still appears nowhere
    bad = _cli(["predict", str(REPO / "assets/demo/spk01_f_angry_01.flac"), "--tokens", "none",
                "--model", f"openai:{url}"], _env(tmp_path, CUELAB_API_KEY="wrong-key-123"))  # fmt: skip
    out, err = bad.communicate(timeout=120)
    errors = [line for line in err.splitlines() if line.startswith("cuelab: error:")]
    assert bad.returncode == 1 and len(errors) == 1 and "HTTP 401" in errors[0]
    assert "wrong-key-123" not in out + err and "Traceback" not in err


def test_a_dead_endpoint_is_one_line_on_the_command_line(dead_url: str, tmp_path: Path) -> None:
    proc = _cli(["predict", str(REPO / "assets/demo/spk01_f_angry_01.flac"), "--tokens", "none",
                 "--model", f"openai:{dead_url}"], _env(tmp_path))  # fmt: skip
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("cuelab: error:")]
    assert len(errors) == 1 and dead_url in errors[0] and "Traceback" not in err
    assert "connection failed" in errors[0]


def test_predict_json_records_the_scoring(serve: Serve, tmp_path: Path) -> None:
    _, url = serve()
    proc = _cli(["predict", str(REPO / "assets/demo/spk01_f_angry_01.flac"), "--json",
                 "--model", f"openai:{url}", "--scoring", "continuation"], _env(tmp_path))  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    record = json.loads(out)
    assert record["scoring"] == "continuation" and abs(sum(record["probs"].values()) - 1) < 1e-6


def test_sseu_answers_equal_in_process_and_record_how_they_ended(
    serve: Serve, qwen2_audio_dir: Path, tmp_path: Path
) -> None:
    from cuelab.core.tasks.sseu.build import build_sseu

    build_sseu(tmp_path / "set", snrs=[5.0])
    _, url = serve()
    remote, local = f"openai:{url}", f"qwen2-audio:{qwen2_audio_dir}"
    config = config_from_mapping({
        "manifest": str(tmp_path / "set" / "manifest.csv"), "models": [remote, local],
        "out": str(tmp_path / "run"), "sseu_tasks": ["asr", "asc"], "joint": True,
        "max_new_tokens": 5, "concurrency": 4, "limit": 3,
    }, None)  # fmt: skip
    run_eval(config)
    rows = _rows(tmp_path / "run")
    by = {(r["utt_id"], r["mode"], r["model"]): r for r in rows}
    remote_rows = [r for r in rows if r["model"] == remote]
    assert len(remote_rows) == 3 * 2
    for r in remote_rows:
        twin = by[(r["utt_id"], r["mode"], local)]
        for col in ("raw_output", "raw_asr", "raw_asc", "finish_reason", "gen_tokens"):
            assert r[col] == twin[col], col
        assert r["finish_reason"] in ("stop", "length") and int(r["gen_tokens"]) > 0
