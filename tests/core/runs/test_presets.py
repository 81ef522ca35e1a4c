"""Named presets: every choice set, explicit flags win, run.json records both, --explain."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.cli import build_parser, main
from cuelab.cli.eval import config_from_args
from cuelab.core.runs import RunConfig, RunConfigError, load_config
from cuelab.core.runs.presets import PresetError, apply_preset, explain, load_preset, preset_names
from tests.conftest import REPO

DEMO = REPO / "assets" / "demo" / "manifest.csv"
MATCHER = "openai-embeddings:http://127.0.0.1:9/v1#m"


def args(*extra: str) -> list[str]:
    return ["eval", "--manifest", str(DEMO), "--model", "oracle:-", "--out", "r", *extra]


def test_shipped_presets_load_with_a_source_for_every_setting(tmp_path: Path) -> None:
    assert preset_names() == ["concept-tokens", "sseu-bench"]
    for name in preset_names():
        preset = load_preset(name)
        assert preset.settings and set(preset.settings) <= set(preset.sources)
        assert all(s.strip() for s in preset.sources.values())
    assert load_preset("sseu-bench").needs == ("embedding-matcher",)
    (tmp_path / "bad.toml").write_text(
        '[settings]\nseedz = [1]\n[sources]\nseedz = "x"\n', encoding="utf-8"
    )
    with pytest.raises(PresetError, match="unknown setting 'seedz'"):
        load_preset("bad", tmp_path, keys={"seeds"})
    (tmp_path / "nosrc.toml").write_text("[settings]\nseeds = [1]\n", encoding="utf-8")
    with pytest.raises(PresetError, match="'seeds' has no \\[sources\\] entry"):
        load_preset("nosrc", tmp_path)


def test_sseu_bench_sets_every_choice_of_the_paper() -> None:
    config = config_from_args(build_parser().parse_args(args("--preset", "sseu-bench",
                                                             "--matcher", MATCHER)))  # fmt: skip
    assert config.sseu_modes == ("independent", "joint", "cot")
    assert config.sseu_tasks == ("asr", "asc", "at")
    assert config.answers == "open" and config.sample and config.seeds == (0, 1, 2)
    assert (config.temperature, config.top_p) == (0.7, 0.9)
    assert config.preset == "sseu-bench" and config.preset_overrides == ()
    assert config.to_json()["preset"] == "sseu-bench"


def test_explicit_flags_override_and_both_are_recorded() -> None:
    config = config_from_args(build_parser().parse_args(args(
        "--preset", "sseu-bench", "--matcher", MATCHER, "--seeds", "4,5", "--answers", "closed",
        "--max-new-tokens", "256",  # the preset's own value: not an override
    )))  # fmt: skip
    assert config.seeds == (4, 5) and config.answers == "closed"
    assert config.preset_overrides == ("answers", "seeds")
    data = config.to_json()
    assert data["preset"] == "sseu-bench" and data["preset_overrides"] == ["answers", "seeds"]
    assert RunConfig.from_json(data) == config  # run.json reads back without re-applying
    greedy = config_from_args(build_parser().parse_args(args(
        "--preset", "sseu-bench", "--matcher", MATCHER, "--greedy")))  # fmt: skip
    assert not greedy.sample and greedy.temperature is None
    assert greedy.decoding()["decoding"] == "greedy" and greedy.preset_overrides == ("sample",)


def test_toml_names_a_preset_and_its_keys_override(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'preset = "sseu-bench"\nmanifest = "{DEMO}"\nmodels = ["oracle:-"]\nout = "r"\n'
        f'matcher = "{MATCHER}"\ncot = false\n',
        encoding="utf-8",
    )
    config = load_config(toml)
    assert config.sseu_modes == ("independent", "joint") and config.answers == "open"
    assert config.preset_overrides == ("cot",)
    assert load_config(toml, seeds="7").preset_overrides == ("cot", "seeds")
    assert load_config(toml, seeds="0,1,2", temperature=0.7).preset_overrides == ("cot",)
    toml.write_text(f'preset = "sseu-bench"\nmanifest = "{DEMO}"\nmodels = ["oracle:-"]\n'
                    'out = "r"\n', encoding="utf-8")  # fmt: skip
    with pytest.raises(RunConfigError, match=r"run.toml: preset sseu-bench maps free answers"):
        load_config(toml)


def test_sseu_bench_without_an_embedding_matcher_refuses_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cuelab.core import errors

    with pytest.raises(PresetError, match="maps free answers with text embeddings") as info:
        apply_preset({"preset": "sseu-bench", "matcher": "lexical"})
    assert info.value.remedy == errors.EMBEDDING_MATCHER
    assert main(args("--preset", "sseu-bench")) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cuelab: error: preset sseu-bench")
    assert "--matcher openai-embeddings:URL#MODEL" in err[0]
    assert "embeddings:FOLDER" in err[0]


def test_concept_tokens_preset_gives_the_intervention_grid() -> None:
    config = config_from_args(build_parser().parse_args(args("--preset", "concept-tokens")))
    assert config.conditions[:4] == ("audio-only", "correct", "shuffle", "conflict")
    assert [c for c in config.conditions if c.startswith("corrupt:")] == [
        "corrupt:0.1", "corrupt:0.3", "corrupt:0.5", "corrupt:0.7", "corrupt:1"]  # fmt: skip
    assert config.seeds == (0, 1, 2) and config.bootstrap == 1000 and not config.is_sseu


def test_explain_prints_each_setting_with_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--preset", "sseu-bench", "--explain", "--seeds", "9"]) == 0
    out = capsys.readouterr().out
    preset = load_preset("sseu-bench")
    for key, source in preset.sources.items():
        assert f"\n{key} = " in out and source in out
    assert "seeds = 9  (overridden; preset: 0,1,2)" in out
    assert "layout = per-background" in out and "needs embedding-matcher" in out
    assert explain("concept-tokens").startswith("preset concept-tokens")
    assert main(["eval", "--preset", "nope", "--explain"]) != 0
    assert "unknown preset 'nope' (known: concept-tokens, sseu-bench)" in capsys.readouterr().err


def test_every_command_in_docs_reproducing_parses() -> None:
    """The commands the reproduction page gives exist with the flags it uses."""
    import shlex

    from tests.conftest import REPO as ROOT

    text = (ROOT / "docs" / "reproducing.md").read_text(encoding="utf-8")
    commands = []
    for block in text.split("```bash")[1:]:
        lines = block.split("```", 1)[0].replace("\\\n", " ").splitlines()
        commands += [
            shlex.split(line, comments=True) for line in lines if line.startswith("cuelab ")
        ]
    assert len(commands) >= 10
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv[1:])
        assert callable(args.func), argv
    presets = {argv[argv.index("--preset") + 1] for argv in commands if "--preset" in argv}
    assert presets == set(preset_names())


def test_a_flag_of_the_other_run_kind_names_the_preset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flags, said in (
        (("--preset", "concept-tokens", "--tasks", "asr"), "--tasks"),
        (("--preset", "concept-tokens", "--joint"), "--joint"),
        (("--preset", "concept-tokens", "--matcher", MATCHER), "--matcher"),
    ):
        assert main(args(*flags)) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "preset concept-tokens" in err[0] and said in err[0], err
    with pytest.raises(RunConfigError, match=r"preset sseu-bench.*--conditions"):
        config_from_args(build_parser().parse_args(args(
            "--preset", "sseu-bench", "--matcher", MATCHER, "--conditions", "correct")))  # fmt: skip
    # audio-only is what an SSEU run is anyway: not a conflict
    config = config_from_args(build_parser().parse_args(args(
        "--preset", "sseu-bench", "--matcher", MATCHER, "--conditions", "audio-only")))  # fmt: skip
    assert config.is_sseu


def test_explain_reads_the_preset_of_a_toml_run_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "sseu-bench"\nseeds = [7]\n', encoding="utf-8")
    assert main(["eval", str(toml), "--explain", "--top-p", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("preset sseu-bench")
    assert "seeds = 7  (overridden; preset: 0,1,2)" in out
    assert "top_p = 0.5  (overridden; preset: 0.9)" in out
    toml.write_text("seeds = [7]\n", encoding="utf-8")
    assert main(["eval", str(toml), "--explain"]) != 0
    assert "--explain needs --preset NAME" in capsys.readouterr().err


def test_concept_tokens_sets_the_papers_test_families(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preset = load_preset("concept-tokens")
    assert preset.report == {"holm": "family"} and preset.report_sources["holm"].strip()
    text = explain("concept-tokens")
    assert "holm = family" in text and preset.report_sources["holm"] in text
    assert "holm = all  (overridden; preset: family)" in explain("concept-tokens", {"holm": "all"})
    from cuelab.core.runs.presets import report_setting

    assert report_setting("concept-tokens", "holm") == "family"
    assert report_setting(None, "holm") is None and report_setting("sseu-bench", "holm") is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[report]\nholm = "some"\n[report_sources]\nholm = "x"\n', encoding="utf-8")
    with pytest.raises(PresetError, match="holm"):
        load_preset("bad", tmp_path)
    assert main(["eval", "--preset", "concept-tokens", "--explain", "--holm", "all"]) == 0
    assert "holm = all  (overridden; preset: family)" in capsys.readouterr().out
