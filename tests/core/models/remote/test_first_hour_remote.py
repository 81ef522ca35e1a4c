"""Shards of a served model merge across endpoint lists (issue 24, trap 6).

One vLLM server per node gives each shard its own ``openai:URL`` spec. The
model is the same: the served model id and server version decide, and the
URLs are kept as provenance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.runs import RunConfigError, merge_runs, read_record, run_eval
from tests.core.models.remote.conftest import Serve
from tests.core.models.remote.test_remote_runs import _config, _rows


def test_shards_on_different_endpoints_merge_to_the_whole(serve: Serve, tmp_path: Path) -> None:
    _, url1 = serve()
    _, url2 = serve()
    spec1, spec2 = f"openai:{url1}", f"openai:{url2},{url1}"
    run_eval(_config(tmp_path / "whole", [spec1]))
    run_eval(_config(tmp_path / "s1", [spec1], shard="1/2"))
    run_eval(_config(tmp_path / "s2", [spec2], shard="2/2"))
    code = main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "-o",
                 str(tmp_path / "merged"), "--no-plots"])  # fmt: skip
    assert code == 0
    whole = sorted(tuple(r.values()) for r in _rows(tmp_path / "whole"))
    assert sorted(tuple(r.values()) for r in _rows(tmp_path / "merged")) == whole
    record = read_record(tmp_path / "merged")
    assert record["served_endpoints"] == {"tiny/qwen2-audio": [url1, url2]}
    assert [m["models"] for m in record["merged_from"]][1][spec2]["endpoints"] == [url2, url1]
    assert record["config"]["models"] == [spec1]


def test_another_served_model_or_server_version_is_refused(serve: Serve, tmp_path: Path) -> None:
    _, url1 = serve()
    _, url2 = serve(version="0.0.1-other")
    _, url3 = serve(model_id="tiny/other-model")
    run_eval(_config(tmp_path / "s1", [f"openai:{url1}"], shard="1/2"))
    run_eval(_config(tmp_path / "s2", [f"openai:{url2}"], shard="2/2"))
    run_eval(_config(tmp_path / "s3", [f"openai:{url3}"], shard="2/2"))
    with pytest.raises(RunConfigError, match=r"served model differs .*0\.0\.1-other"):
        merge_runs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "m")
    with pytest.raises(RunConfigError, match="tiny/other-model"):
        merge_runs([tmp_path / "s1", tmp_path / "s3"], tmp_path / "m")


def test_predict_json_shows_the_request_messages_without_the_audio(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import REPO

    _, url = serve()
    clip = REPO / "assets" / "demo" / "spk01_f_angry_01.flac"
    assert main(["predict", str(clip), "--json", "--model", f"openai:{url}",
                 "--tokens", "ENERGY=LOW"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    messages = record["prompt"]
    assert isinstance(messages, list) and messages[-1]["role"] == "user"
    audio, text = messages[-1]["content"]
    assert audio["type"] == "input_audio" and "omitted" in audio["input_audio"]["data"]
    assert "ENERGY=LOW" in text["text"] and "angry" in text["text"]
    assert len(json.dumps(messages)) < 4000  # no base64 audio


def test_the_served_example_runs_against_a_server(serve: Serve, tmp_path: Path) -> None:
    """examples/served.toml with the test server in place of a vLLM one."""
    from tests.conftest import REPO

    _, url = serve()
    out = tmp_path / "run"
    code = main(["eval", str(REPO / "examples" / "served.toml"), "--model", f"openai:{url}",
                 "--limit", "6", "--out", str(out), "--no-plots"])  # fmt: skip
    assert code == 0
    record = read_record(out)
    assert record["status"] == "complete" and record["config"]["concurrency"] == 16
    described = record["models"][f"openai:{url}"]
    assert described["model"] == "tiny/qwen2-audio" and described["endpoints"] == [url]
    assert len(_rows(out)) == 6 * 3
