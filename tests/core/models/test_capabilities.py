"""Declared capabilities match what each family implements; requests carry the work.

Every registered family's adapter class is imported (no weights are loaded) and its
declared ``provides`` set is compared with the protocols it implements, both ways:
a family that declares a capability without its method, or has the method without
declaring it, fails here. The old call shapes (``score_labels``, ``generate_full``)
are checked to give exactly what the requests give, on the shipped reference model
and the oracle.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models import capabilities as caps
from cuelab.core.models.base import Clip
from cuelab.core.models.capabilities import (
    Capability,
    GenerateRequest,
    ScoreRequest,
    SimilarityRequest,
)
from cuelab.core.models.registry import families, get_adapter_class, load_model
from cuelab.core.tasks.prompts import TaskPrompt, load_task
from tests.conftest import REPO

#: What each family must declare (a new family adds its line: the declaration is the contract).
EXPECTED: dict[str, set[Capability]] = {
    "qwen2-audio": {Capability.GENERATE},
    "qwen2.5-omni": {Capability.GENERATE},
    "audio-flamingo-3": {Capability.GENERATE},
    "clap": {Capability.SIMILARITY},
    "reference": set(),
    "oracle": {Capability.GENERATE, Capability.MANIFEST_ANSWERS},
    "openai": {Capability.GENERATE, Capability.SERVED},
    "ms-clap": {Capability.SIMILARITY, Capability.LABEL_TEXTS},
    "laion-clap": {Capability.SIMILARITY, Capability.LABEL_TEXTS},
    "mga-clap": {Capability.SIMILARITY, Capability.LABEL_TEXTS},
    "paraclap": {Capability.SIMILARITY, Capability.LABEL_TEXTS},
    "pengi": {Capability.GENERATE},
    "ltu-as": {Capability.GENERATE},
    "kimi-audio": {Capability.GENERATE},
    "step-audio-2-mini": {Capability.GENERATE},
}


@pytest.mark.parametrize("family", families())
def test_each_family_declares_exactly_what_it_implements(family: str) -> None:
    cls = get_adapter_class(family)
    declared = caps.provided(cls)
    assert Capability.SCORE in declared  # every family scores a closed label set
    assert declared - {Capability.SCORE} == EXPECTED[family]
    for capability, protocol in caps.PROTOCOLS.items():
        assert (capability in declared) == issubclass(cls, protocol), (family, capability)


def test_the_guards_read_the_declaration_of_a_class_or_an_instance() -> None:
    oracle = load_model("oracle")
    for subject in (oracle, type(oracle)):
        assert caps.generates(subject) and caps.answers_from_manifest(subject)
        assert not caps.scores_similarity(subject) and not caps.is_served(subject)
    assert not caps.generates(object())  # an object that declares nothing can do nothing


def test_no_module_probes_an_adapter_for_a_capability() -> None:
    """The capability guards replaced every getattr/hasattr probe of an adapter."""
    names = (
        "score_sseu|similarity|label_prompts|token_note|progress_note|request_messages"
        "|answers_from_manifest|prompt_text|complete|generate_full"
    )
    probe = re.compile(rf"(?:getattr|hasattr)\([^)]*[\"'](?:{names})[\"']")
    found = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted((REPO / "cuelab").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if probe.search(line)
    ]
    assert found == []


def test_a_score_request_renders_every_variant_after_one_shared_prefix() -> None:
    task = load_task("ser")
    clip = Clip(np.zeros(160, dtype=np.float32))
    texts = (None, "ENERGY=HIGH", "PITCH=LOW")
    request = ScoreRequest.from_prompt(clip, task, task.labels, texts)
    assert request.instructions == tuple(task.render(task.labels, t) for t in texts)
    assert request.shared == task.render(task.labels, None) == request.instructions[0]
    assert all(text.startswith(request.shared) for text in request.instructions)
    assert request.token_texts == texts and request.clip is clip


def test_a_generate_request_renders_the_prompt_with_its_own_labels() -> None:
    task = TaskPrompt("t", "Pick: {labels}.", "Pick: {labels}. Tokens: {tokens}", ("a", "b"))
    clip = Clip(np.zeros(160, dtype=np.float32))
    request = GenerateRequest.from_prompt(clip, task, "X", 9, stop=["\n"])
    assert request.instruction == "Pick: a, b. Tokens: X"
    assert (request.max_new_tokens, request.sampling, request.stop) == (9, None, ("\n",))


def demo_clip() -> Clip:
    from cuelab.core.audio.io import load_audio

    path = REPO / "assets" / "demo" / "spk01_f_angry_01.flac"
    audio, sr = load_audio(Path(path), 16000)
    return Clip(audio, sr, "spk01_f_angry_01", meta={"label": "angry", "transcript": "hi"})


def test_score_labels_is_the_score_of_its_request() -> None:
    model = load_model("reference")
    task = load_task("ser")
    clip = demo_clip()
    texts = [None, "ENERGY=VERY_HIGH PITCH=VERY_HIGH"]
    old = model.score_labels(clip, task, task.labels, texts)
    new = model.score(ScoreRequest.from_prompt(clip, task, task.labels, texts))
    assert old == new and len(new) == 2
    assert old[0].probs != old[1].probs  # the reference model reads the tokens


def test_generation_goes_through_the_declared_capability() -> None:
    task = load_task("ser")
    clip = demo_clip()
    oracle = load_model("oracle")
    assert oracle.generate_full(clip, task, None).text == "hi"
    assert caps.generates(oracle)
    assert oracle.complete(GenerateRequest(clip, "anything")).text == "hi"
    reference = load_model("reference")
    assert not caps.generates(reference)
    with pytest.raises(ModelError, match="cannot generate free text"):
        reference.generate_full(clip, task, None)


def test_a_similarity_request_gives_what_score_sseu_gave(clap_dir: Path) -> None:
    model = load_model(f"clap:{clap_dir}")
    try:
        assert caps.scores_similarity(model)
        clip = demo_clip()
        scenes, events = ("park", "street_traffic"), ("bird", "car_passing", "dog")
        old = model.score_sseu(clip, scenes, events)  # type: ignore[attr-defined]
        new = model.similarity(SimilarityRequest(clip, scenes, events))
        assert old == new
        assert sum(new[0].values()) == pytest.approx(1.0) and set(new[1]) == set(events)
        assert all(0.0 < p < 1.0 for p in new[1].values())
        assert model.similarity(SimilarityRequest(clip)) == ({}, {})
    finally:
        model.unload()
