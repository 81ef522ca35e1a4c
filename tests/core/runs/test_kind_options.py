"""Per-kind option groups over the flat RunConfig; the SSEU kind declares what it reads."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from cuelab.core.runs import RunConfig, config_from_mapping
from cuelab.core.runs.options import COMMON, KIND_OPTIONS, EmotionOptions, SseuOptions, option_names
from cuelab.core.runs.sseu import SseuKind
from cuelab.core.tasks import TaskKind


def test_every_field_belongs_to_exactly_one_group() -> None:
    groups = [COMMON, *(option_names(g) for g in KIND_OPTIONS.values())]
    named = [name for group in groups for name in group]
    assert sorted(named) == sorted(f.name for f in fields(RunConfig))
    assert len(named) == len(set(named))


def test_the_views_read_the_flat_fields(tmp_path: Path) -> None:
    sseu = config_from_mapping(
        {"manifest": "m.csv", "models": ["oracle"], "out": str(tmp_path), "seeds": [0, 1],
         "sseu_tasks": ["asr", "at"], "cot": True, "sample": True, "max_new_tokens": 8},
        base_dir=None,
    )  # fmt: skip
    assert isinstance(sseu.sseu, SseuOptions)
    assert sseu.sseu.modes == sseu.sseu_modes == ("independent", "cot")
    assert sseu.sseu.decoding() == sseu.decoding()
    assert sseu.sseu.sampling(3) == sseu.sampling(3) and sseu.sseu.max_new_tokens == 8
    emotion = config_from_mapping(
        {"manifest": "m.csv", "models": ["reference"], "out": str(tmp_path),
         "conditions": ["audio-only", "shuffle"], "edits": ["pitch=+2st"]},
        base_dir=None,
    )  # fmt: skip
    assert emotion.emotion == EmotionOptions(
        conditions=("audio-only", "shuffle"), labels=None, task="ser", norms=None,
        edits=emotion.edits, edit_engine="world",
    )  # fmt: skip
    assert emotion.to_json() == RunConfig.from_json(emotion.to_json()).to_json()


def test_the_sseu_kind_declares_its_group_and_is_a_task_kind(tmp_path: Path) -> None:
    config = config_from_mapping(
        {"manifest": "m.csv", "models": ["oracle"], "out": str(tmp_path), "sseu_tasks": ["asr"]},
        base_dir=None,
    )
    kind: TaskKind[object] = SseuKind(config)
    assert kind.options == option_names(SseuOptions)
    assert (kind.name, kind.report) == ("sseu", "sseu")
