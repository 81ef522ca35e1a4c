"""Features overlap model load and scoring; the thread choice is recorded in run.json."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import pytest

from cuelab.core.audio.io import write_audio
from cuelab.core.cues.feature_cache import FeatureCache
from cuelab.core.jobs import JobControl, ProgressInfo
from cuelab.core.models.base import LoadOptions, ModelAdapter
from cuelab.core.models.registry import load_model
from cuelab.core.runs import config_from_mapping, read_record, run_eval
from tests.core.synth import voiced

LABELS = ("angry", "happy", "neutral", "sad")
CLIPS = 40


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 distinct voiced clips (no two share features), 4 labels, 2 speakers."""
    folder = tmp_path_factory.mktemp("clips")
    lines = ["path,label,speaker,gender"]
    for i in range(CLIPS):
        name = f"c{i:02d}.wav"
        write_audio(folder / name, voiced(f0=110 + 4 * i, seconds=1.0, seed=i), 16000)
        spk = "s1" if i % 2 else "s2"
        lines.append(f"{name},{LABELS[i % 4]},{spk},{'f' if i % 2 else 'm'}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "manifest.csv"


def _config(manifest: Path, out: Path, **kw: object) -> Any:
    data: dict[str, object] = {
        "manifest": str(manifest), "models": ["reference"], "out": str(out),
        "conditions": "audio-only,correct,conflict,corrupt:0.5", "seeds": [0, 1],
        "bootstrap": 50, "workers": 1,
    }  # fmt: skip
    data.update(kw)
    return config_from_mapping(data, base_dir=None)


def _cached(cache: FeatureCache) -> int:
    return sum(1 for _ in cache.root.rglob("*.json"))


def _rows(out: Path) -> list[list[str]]:
    with open(out / "predictions.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_streamed_features_overlap_load_and_scoring_and_keep_the_rows(
    manifest: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    run_eval(_config(manifest, plain), cache=FeatureCache(tmp_path / "cache-plain"))

    cache = FeatureCache(tmp_path / "cache")
    seen: dict[str, int] = {}
    started = threading.Event()

    def loader(spec: str, options: LoadOptions) -> ModelAdapter:
        # The model loads while features run: wait for the first extracted clip.
        seen["loading_thread"] = int(threading.current_thread() is threading.main_thread())
        for _ in range(600):
            if _cached(cache) > 0:
                break
            started.wait(0.05)
        seen["cached_at_load"] = _cached(cache)
        return load_model(spec, options)

    scoring: list[int] = []

    def on_progress(info: ProgressInfo) -> None:
        if info.message.startswith("reference"):
            scoring.append(_cached(cache))

    streamed = tmp_path / "streamed"
    outcome = run_eval(
        _config(manifest, streamed),
        cache=cache,
        loader=loader,
        control=JobControl(on_progress=on_progress),
        stream_features=True,
    )
    assert outcome.rows_written == CLIPS * 5  # 3 seed-free conditions + corrupt x 2 seeds
    assert seen["loading_thread"] == 0  # loaded in the background
    assert 0 < seen["cached_at_load"] < CLIPS  # ... while features were being extracted
    # The first clips were scored before the last clips had features.
    assert scoring and scoring[0] < CLIPS and len(scoring) == CLIPS
    # Same rows, same (manifest) order, as the run that extracted everything first.
    assert _rows(streamed) == _rows(plain)
    record = read_record(streamed)
    assert record["interventions"] == read_record(plain)["interventions"]


def test_a_shuffle_run_waits_for_every_clip_and_still_loads_early(
    manifest: Path, tmp_path: Path
) -> None:
    cache = FeatureCache(tmp_path / "cache")
    at_first_score: list[int] = []
    details: set[str] = set()

    def on_progress(info: ProgressInfo) -> None:
        if info.message == "features" and info.done:
            details.add(info.detail)
        if info.message.startswith("reference") and not at_first_score:
            at_first_score.append(_cached(cache))

    cfg = _config(manifest, tmp_path / "run", conditions="audio-only,shuffle")
    run_eval(cfg, cache=cache, control=JobControl(on_progress=on_progress), stream_features=True)
    assert at_first_score == [CLIPS]  # shuffles draw over the whole split: no streaming
    assert details == {"1 worker"}  # the progress line says how many workers extract


def test_threads_are_chosen_applied_and_recorded(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    before = torch.get_num_threads()
    cache = FeatureCache(tmp_path / "cache")
    try:
        run_eval(_config(manifest, tmp_path / "flag", threads=1, limit=4), cache=cache)
        got = read_record(tmp_path / "flag")["sessions"][-1]["threads"]
        assert (got["threads"], got["source"]) == (1, "flag")
        assert torch.get_num_threads() == 1

        monkeypatch.setenv("CUELAB_THREADS", "2")
        run_eval(_config(manifest, tmp_path / "env", limit=4), cache=cache)
        got = read_record(tmp_path / "env")["sessions"][-1]["threads"]
        assert (got["threads"], got["source"]) == (2, "CUELAB_THREADS")
        assert torch.get_num_threads() == 2

        monkeypatch.delenv("CUELAB_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        run_eval(_config(manifest, tmp_path / "auto", limit=4), cache=cache)
        got = read_record(tmp_path / "auto")["sessions"][-1]["threads"]
        assert got["source"] == "free cores"
        assert 1 <= got["threads"] <= got["cores"]
        assert got["threads"] <= max(1, int(got["idle"] + 0.25))
        assert torch.get_num_threads() == got["threads"]
    finally:
        torch.set_num_threads(before)


def test_threads_come_from_the_command_line_and_toml(manifest: Path, tmp_path: Path) -> None:
    from cuelab.cli import build_parser
    from cuelab.cli.eval import config_from_args
    from cuelab.core.runs import RunConfigError, load_config

    args = build_parser().parse_args(
        ["eval", "--manifest", str(manifest), "--model", "reference", "--conditions",
         "audio-only", "--out", str(tmp_path / "x"), "--threads", "3"]
    )  # fmt: skip
    assert config_from_args(args).threads == 3
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'manifest = "{manifest}"\nmodels = ["reference"]\nconditions = ["audio-only"]\n'
        f'out = "{tmp_path / "y"}"\nthreads = 2\n',
        encoding="utf-8",
    )
    assert load_config(toml).threads == 2
    toml.write_text(toml.read_text(encoding="utf-8").replace("threads = 2", "threads = 0"),
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(RunConfigError, match="threads"):
        load_config(toml)


def test_a_streamed_run_hands_the_next_models_the_whole_plan(
    manifest: Path, tmp_path: Path
) -> None:
    """The first model scores streamed chunks; the second the run's plan: same rows as plain."""
    two = {"models": ["reference", "oracle:-"], "limit": 12}
    plain = tmp_path / "plain"
    run_eval(_config(manifest, plain, **two), cache=FeatureCache(tmp_path / "cache-plain"))
    streamed = tmp_path / "streamed"
    details: list[str] = []

    def on_progress(info: ProgressInfo) -> None:
        if info.message.startswith(("reference", "oracle")):
            details.append(f"{info.message.split(':')[0]}|{info.detail}")

    outcome = run_eval(
        _config(manifest, streamed, **two),
        cache=FeatureCache(tmp_path / "cache"),
        control=JobControl(on_progress=on_progress),
        stream_features=True,
    )
    assert outcome.rows_written == 12 * 5 * 2
    assert _rows(streamed) == _rows(plain)
    assert read_record(streamed)["interventions"] == read_record(plain)["interventions"]
    # the streamed model's progress says how far the features are; the next model's does not
    assert all(d.startswith("reference|features ") for d in details[:12])
    assert details[12:] == ["oracle|"] * 12


def test_a_failed_load_stops_the_streamed_features(manifest: Path, tmp_path: Path) -> None:
    from cuelab.core.errors import ModelError

    def loader(spec: str, options: LoadOptions) -> ModelAdapter:
        raise ModelError("no such weights")

    with pytest.raises(ModelError, match="no such weights"):
        run_eval(
            _config(manifest, tmp_path / "run"),
            cache=FeatureCache(tmp_path / "cache"),
            loader=loader,
            stream_features=True,
        )
    alive = {t.name for t in threading.enumerate()}
    assert not alive & {"cuelab-features", "cuelab-model-load"}
    assert read_record(tmp_path / "run")["status"] != "running"
