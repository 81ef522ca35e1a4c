"""Served runs from the command line against hostile servers: signals, bad answers, long answers, secrets.

Real ``cuelab`` processes, real signals, the real-protocol server of tests/servers.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from cuelab.core.runs import read_record
from cuelab.core.runs.csvio import read_complete_rows
from tests.conftest import REPO
from tests.core.models.remote.conftest import Serve
from tests.core.models.remote.test_remote_runs import _cli, _env, _eval_args
from tests.servers.openai_audio import AudioChatServer

CLIP = str(REPO / "assets/demo/spk01_f_angry_01.flac")
CHAT = "/v1/chat/completions"


def _rows(path: Path) -> int:
    file = path / "predictions.csv"
    return file.read_text().count("\n") - 1 if file.exists() else 0


def _stop_with(
    sig: int, server: AudioChatServer, url: str, out: Path, env: dict[str, str], *more: str
) -> tuple[int, str, float]:
    """Start a run, let a few rows land, make every request hang, then signal it.

    Returns (exit status, stderr, seconds from the signal to the exit).
    """
    server.options.latency_s = 0.2
    before = _rows(out)
    proc = _cli(_eval_args(url, out, "--concurrency", "2", *more), env, start_new_session=True)
    deadline = time.monotonic() + 120
    while _rows(out) < before + 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    server.options.latency_s = 300.0  # from now on every request hangs
    time.sleep(1.5)
    assert proc.poll() is None and server.stats.in_flight > 0
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, time.monotonic() - sent


def test_signals_stop_a_served_run_within_seconds_and_resume_is_exact(
    serve: Serve, tmp_path: Path
) -> None:
    server, url = serve()
    env = _env(tmp_path)
    reference = _cli(_eval_args(url, tmp_path / "ref", "--concurrency", "4"), env)
    assert reference.wait(300) == 0
    out = tmp_path / "run"
    for sig, status, more in [(signal.SIGTERM, 143, ()), (signal.SIGINT, 130, ("--resume",))]:
        code, err, took = _stop_with(sig, server, url, out, env, *more)
        assert code == status, err
        assert took < 10, took  # not the requests' 600 s deadlines
        assert "Traceback" not in err and "KeyboardInterrupt" not in err
        assert (
            err.strip().splitlines()[-1].startswith(("cuelab: terminated", "cuelab: interrupted"))
        )
        assert read_record(out)["status"] == "interrupted"
        assert 0 < _rows(out) < 8 * 3
    server.options.latency_s = 0.0
    resumed = _cli(_eval_args(url, out, "--resume", "--concurrency", "3"), env)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert (out / "predictions.csv").read_bytes() == (
        tmp_path / "ref" / "predictions.csv"
    ).read_bytes()


def test_an_error_answer_fails_the_run_in_one_line_and_writes_no_unparsed_rows(
    serve: Serve, tmp_path: Path
) -> None:
    server, url = serve()
    calls: list[int] = []

    def error_after_two(path: str, body: dict[str, Any], real: Any) -> Any:
        if path != CHAT or real is None or not isinstance(body["messages"][-1]["content"], list):
            return None  # the load's text-only probes are answered
        calls.append(1)
        return {"error": {"message": "model overloaded", "code": 503}} if len(calls) > 6 else None

    server.rewrite = error_after_two
    out = tmp_path / "run"
    proc = _cli(_eval_args(url, out, "--scoring", "generate"), _env(tmp_path))
    _, err = proc.communicate(timeout=300)
    errors = [line for line in err.splitlines() if line.startswith("cuelab: error:")]
    assert proc.returncode == 1 and len(errors) == 1, err
    assert url in errors[0] and "HTTP 200 with an error: model overloaded" in errors[0]
    assert read_record(out)["status"] == "failed"
    _, rows, _ = read_complete_rows(out / "predictions.csv")
    assert len(rows) <= 6  # the clips fully answered before the error, no row for the rest


def test_a_200_kb_answer_is_cut_and_the_run_stays_readable(serve: Serve, tmp_path: Path) -> None:
    server, url = serve()

    def chatty(path: str, body: dict[str, Any], real: Any) -> Any:
        if path != CHAT or real is None or not isinstance(body["messages"][-1]["content"], list):
            return None
        real["choices"][0]["message"]["content"] = "angry " + "é" * 200_000
        return real

    server.rewrite = chatty
    out = tmp_path / "run"
    proc = _cli(_eval_args(url, out, "--scoring", "generate"), _env(tmp_path))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    header, rows, _ = read_complete_rows(out / "predictions.csv")
    assert len(rows) == 8 * 3
    raw, finish = header.index("raw_output"), header.index("finish_reason")
    assert all(len(r[raw]) <= 32 * 64 and r[finish] == "length" for r in rows)
    repaired = _cli(["repair", str(out)], _env(tmp_path))
    _, err = repaired.communicate(timeout=120)
    assert repaired.returncode == 0, err
    assert len(read_complete_rows(out / "predictions.csv")[1]) == 8 * 3  # nothing moved aside

    def megabytes(path: str, body: dict[str, Any], real: Any) -> Any:
        if path != CHAT or real is None:
            return None
        real["choices"][0]["message"]["content"] = "x" * 8_000_000
        return real

    server.rewrite = megabytes
    shown = _cli(["predict", CLIP, "--tokens", "none", "--generate", "--model", f"openai:{url}"],
                 _env(tmp_path))  # fmt: skip
    printed, err = shown.communicate(timeout=120)
    assert shown.returncode == 0, err
    assert len(printed) < 10_000 and "more characters" in printed


# ----- credentials ---------------------------------------------------------------------------

PASSWORD = "Pw-9c1e7f53a2"


@pytest.mark.parametrize(
    "spec",
    [
        f"openai:http://user:{PASSWORD}@127.0.0.1:9/v1",
        f"openai:ftp://user:{PASSWORD}@127.0.0.1/v1",
        f"openai:user:{PASSWORD}@127.0.0.1:9/v1",
        f"openai:http://127.0.0.1:9/v1,https://{PASSWORD}@h/v1#m",
    ],
    ids=["http", "ftp", "no-scheme", "second-url"],
)
@pytest.mark.parametrize("command", ["eval", "predict"])
def test_credentials_in_a_url_are_refused_before_anything_is_recorded(
    tmp_path: Path, spec: str, command: str
) -> None:
    out = tmp_path / "run"
    if command == "eval":
        args = [*_eval_args("x", out)]
        args[args.index("openai:x")] = spec
    else:
        args = ["predict", CLIP, "--tokens", "none", "--model", spec]
    proc = _cli(args, _env(tmp_path))
    printed, err = proc.communicate(timeout=120)
    errors = [line for line in err.splitlines() if line.startswith("cuelab: error:")]
    assert proc.returncode == 1 and len(errors) == 1, err
    assert "credentials" in errors[0] and "Traceback" not in err
    assert PASSWORD not in printed + err
    assert not (out / "run.json").exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_the_spec_never_shows_a_password() -> None:
    from cuelab.core.errors import ModelError
    from cuelab.core.models.remote.spec import parse_remote_location, shown_url

    for url in (f"ftp://u:{PASSWORD}@h/v1", f"u:{PASSWORD}@h:1/v1", f"http://u:{PASSWORD}@@h/v1",
                f"gopher://{PASSWORD}@h"):  # fmt: skip
        assert PASSWORD not in shown_url(url)
        with pytest.raises(ModelError) as err:
            parse_remote_location(url)
        assert PASSWORD not in str(err.value) and "credentials" in str(err.value)
    with pytest.raises(ModelError, match="not an http"):
        parse_remote_location("http://h:99999999/v1")
    assert json.dumps(shown_url("http://h:1/v1")) == '"http://h:1/v1"'
