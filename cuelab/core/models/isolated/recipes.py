"""Pinned recipes for the isolated families' environments.

A recipe says which torch, which packages (with their dependencies, under a
constraint that keeps torch as installed), which packages without their
dependencies (a declared dependency that cannot be met, named in ``notes``),
where the model code comes from, which modules must import, and what the
model's LOCATION is. Its hash goes into the environment's marker file, so an
environment built from an older recipe is reported ``broken`` until rebuilt.

Torch comes first and alone: on a machine with an NVIDIA GPU the recipe's
version from the default index (a CUDA build); without one, a CPU build (a
wheel in pip's ``find-links`` first, else PyTorch's CPU index). No step may
pull a second torch: every later ``pip install`` runs under ``torch==<installed>``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from cuelab.core.errors import ModelError

CONTRASTIVE = "contrastive"
GENERATIVE = "generative"


@dataclass(frozen=True)
class Recipe:
    """How to build one family's environment.

    Attributes:
        family: the SPEC family name.
        kind: ``contrastive`` (label prompts against audio) or ``generative`` (free text).
        torch: the torch version installed first.
        packages: requirements installed with their dependencies.
        no_deps: requirements installed without their dependencies (see ``notes``).
        code: where the model code comes from: ``pypi:NAME==VERSION`` or
            ``git:URL@COMMIT`` (checked out into the environment's ``src/``).
        code_install: for ``git:`` code, ``pip`` (the checkout is a package) or ``path``
            (the checkout goes on ``sys.path`` through a ``.pth`` file).
        imports: modules ``cuelab env check`` imports inside the environment.
        location: what a SPEC's LOCATION names.
        pickle: the released weights are pickles (the SPEC needs ``--allow-pickle``).
        remote_code: the release runs its own code (the SPEC needs ``--trust-remote-code``).
        notes: departures from the upstream requirements and why.
    """

    family: str
    kind: str
    torch: str
    packages: tuple[str, ...]
    code: str
    imports: tuple[str, ...]
    location: str
    no_deps: tuple[str, ...] = ()
    code_install: str = "pip"
    pickle: bool = True
    remote_code: bool = False
    notes: tuple[str, ...] = ()

    def digest(self) -> str:
        """A short hash of everything that affects the environment."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


_TORCH = "2.13.0"

RECIPES: dict[str, Recipe] = {
    r.family: r
    for r in (
        Recipe(
            family="ms-clap",
            kind=CONTRASTIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "librosa==0.10.2.post1",
                "pandas==2.2.3",
                "pyyaml==6.0.2",
                "scikit-learn==1.5.2",
                "torchlibrosa==0.1.0",
                "tqdm>=4.66.1,<5",
                "transformers==4.57.6",
            ),
            no_deps=("msclap==1.3.4",),
            code="pypi:msclap==1.3.4",
            imports=("msclap.models.clap", "transformers", "torchlibrosa"),
            location="CLAP_weights_2022.pth or CLAP_weights_2023.pth (or their folder)",
            notes=(
                "msclap declares torchaudio>=2.1, which has no build for torch 2.13; msclap is "
                "installed without dependencies and the rest of its requirements are pinned "
                "here. Only msclap/CLAPWrapper.py imports torchaudio (file loading and "
                "resampling); the worker builds msclap.models.clap.CLAP itself and gets audio "
                "already at the config's rate from CueLab.",
            ),
        ),
        Recipe(
            family="laion-clap",
            kind=CONTRASTIVE,
            torch=_TORCH,
            packages=("numpy==1.26.4", "transformers==4.57.6", "torchvision==0.28.0"),
            code="pypi:laion_clap==1.1.7",
            imports=("laion_clap.clap_module", "transformers", "torchlibrosa"),
            location="630k-best.pt, 630k-audioset-best.pt or a fusion checkpoint (or its folder)",
            notes=(
                "laion_clap's own package from PyPI with all its declared dependencies; "
                "torchvision (imported by laion_clap.clap_module) is pinned to 0.28.0, the "
                "release built against torch 2.13. Its PyPI wheel is a CUDA build: with a CPU "
                "torch its compiled operators do not load, so the worker skips only "
                "torchvision's fake-kernel registrations; laion_clap uses torchvision for "
                "image transforms and a batch-norm helper that the audio path never calls.",
                "Fusion checkpoints need torchaudio (feature fusion), which has no build for "
                "torch 2.13: the worker refuses them on a CPU torch.",
            ),
        ),
        Recipe(
            family="mga-clap",
            kind=CONTRASTIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "transformers==4.57.6",
                "librosa==0.10.2.post1",
                "torchlibrosa==0.1.0",
                "pyyaml==6.0.2",
                "einops==0.8.1",
                "timm==1.0.15",
            ),
            code="git:https://github.com/Ming-er/MGA-CLAP@main",
            code_install="path",
            imports=("transformers", "torchlibrosa"),
            location="the released MGA-CLAP checkpoint (.pt) with its config (.yaml) beside it",
        ),
        Recipe(
            family="paraclap",
            kind=CONTRASTIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "transformers==4.57.6",
                "librosa==0.10.2.post1",
                "audtorch==0.6.4",
            ),
            code="git:https://github.com/KeiKinn/ParaCLAP@main",
            code_install="path",
            imports=("transformers",),
            location="the ParaCLAP checkpoint (best.pth.tar); its text model bert-base-uncased "
            "and audio model wav2vec2 resolve through the local Hugging Face cache",
        ),
        Recipe(
            family="pengi",
            kind=GENERATIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "transformers==4.28.1",
                "torchlibrosa==0.1.0",
                "librosa==0.10.2.post1",
                "pyyaml==6.0.2",
            ),
            code="git:https://github.com/microsoft/Pengi@main",
            code_install="path",
            imports=("transformers", "torchlibrosa"),
            location="base.pth or base_no_text_enc.pth (with its .yml config beside it)",
            notes=("Pengi pins torch 2.0; the recipe uses torch 2.13 (not run here).",),
        ),
        Recipe(
            family="ltu-as",
            kind=GENERATIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "sentencepiece==0.2.0",
                "peft==0.3.0",
                "openai-whisper==20231117",
            ),
            code="git:https://github.com/YuanGongND/ltu@main",
            code_install="path",
            imports=("sentencepiece", "whisper"),
            location="the LTU-AS folder: the LLaMA-7B base in HF layout and ltuas_long_noqa_a6.bin",
            notes=(
                "LTU-AS vendors a transformers 4.28 fork (src/ltu_as/hf-dev/transformers-main); "
                "the checkout's copy is put on sys.path (not run here).",
            ),
        ),
        Recipe(
            family="kimi-audio",
            kind=GENERATIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "transformers==4.49.0",
                "librosa==0.10.2.post1",
                "tiktoken==0.9.0",
                "sentencepiece==0.2.0",
                "einops==0.8.1",
                "soundfile==0.13.1",
            ),
            code="git:https://github.com/MoonshotAI/Kimi-Audio@master",
            code_install="path",
            imports=("transformers", "tiktoken"),
            location="the Kimi-Audio-7B-Instruct folder",
            pickle=False,
            remote_code=True,
            notes=("flash-attn is left out: the CPU path uses eager attention (not run here).",),
        ),
        Recipe(
            family="step-audio-2-mini",
            kind=GENERATIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "transformers==4.49.0",
                "librosa==0.10.2.post1",
                "onnxruntime==1.20.1",
                "s3tokenizer==0.2.0",
                "soundfile==0.13.1",
            ),
            code="git:https://github.com/stepfun-ai/Step-Audio2@main",
            code_install="path",
            imports=("transformers",),
            location="the Step-Audio-2-mini folder (safetensors and its remote code)",
            pickle=False,
            remote_code=True,
            notes=("Needs --trust-remote-code: the release's modeling code runs (not run here).",),
        ),
    )
}


def families() -> list[str]:
    """The isolated families, sorted."""
    return sorted(RECIPES)


def get_recipe(family: str) -> Recipe:
    """The recipe of ``family``.

    Raises:
        ModelError: not an isolated family (the message lists them).
    """
    recipe = RECIPES.get(family)
    if recipe is None:
        raise ModelError(
            f"{family!r} has no environment recipe (families: {', '.join(families())})"
        )
    return recipe
