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
        handler: the worker's handler, ``module:Class`` in the worker's folder (or in
            ``handler_path``); "" when CueLab has none yet (recipe only).
        handler_path: folders put first on the worker's ``sys.path`` for ``handler``
            (a handler kept outside CueLab's worker folder).
        summary: one line for ``cuelab models`` and the window's family list.
        label_template: how an emotion label becomes a prompt, for a contrastive family
            trained with its own wording ("": CLAP's default).
        python_max: the newest Python its pins have wheels for (the environment is made
            with CueLab's own interpreter), or None.
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
    handler: str = ""
    handler_path: tuple[str, ...] = ()
    summary: str = ""
    label_template: str = ""
    python_max: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()

    @property
    def worker(self) -> bool:
        """CueLab has a worker handler for the family (False: recipe only)."""
        return bool(self.handler)

    def digest(self) -> str:
        """A short hash of everything that affects the environment (not the notes)."""
        fields = asdict(self)
        keep = ("family", "torch", "packages", "no_deps", "code", "code_install", "imports")
        text = json.dumps({k: fields[k] for k in keep}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


_TORCH = "2.13.0"

RECIPES: dict[str, Recipe] = {
    r.family: r
    for r in (
        Recipe(
            family="ms-clap",
            handler="wk_msclap:MsClapHandler",
            summary="Microsoft CLAP, isolated worker (cuelab env create ms-clap)",
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
            handler="wk_laionclap:LaionClapHandler",
            summary="LAION-CLAP, isolated worker (cuelab env create laion-clap)",
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
            handler="wk_mgaclap:MgaClapHandler",
            summary="MGA-CLAP, isolated worker (cuelab env create mga-clap)",
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
                "scipy==1.14.1",
                # imported by the repository's tools/utils.py, which models/ase_model.py imports
                "wandb==0.19.1",
                "loguru==0.7.3",
                "sentence-transformers==3.3.1",
                # tools/utils.py imports sed_scores_eval.utils.scores: gone from the PyPI
                # release (0.0.4) and from the repository since 2023-06-21, so the last
                # commit that has it; dcase_util under it needs pkg_resources (setuptools < 81)
                "sed_scores_eval @ git+https://github.com/fgnt/sed_scores_eval"
                "@970e6277b5016aae5e00d15716e2e070b432076f",
                "setuptools==80.9.0",
                "ruamel.yaml==0.18.6",
            ),
            code="git:https://github.com/Ming-er/MGA-CLAP@887b6244094f5e13880e00fd29b37ea7625853e4",
            code_install="path",
            imports=("models.ase_model",),
            location="the released model.pt (with a .yaml config beside it, else the "
            "repository's settings/inference_example.yaml)",
            notes=(
                "Packages read from the repository's imports (it ships no requirements file). "
                "timm pulls torchvision: on a CPU torch the worker skips torchvision's "
                "fake-kernel registrations, as for LAION-CLAP (not built here: needs GitHub).",
            ),
        ),
        Recipe(
            family="paraclap",
            handler="wk_paraclap:ParaClapHandler",
            summary="ParaCLAP (paralinguistic CLAP), isolated worker",
            # preprocessing/template_creation.py: f'emotion is {row["emotion"]}'
            label_template="emotion is {label}",
            kind=CONTRASTIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "transformers==4.57.6",
                "librosa==0.10.2.post1",
            ),
            code="git:https://github.com/KeiKinn/ParaCLAP@5a52617b09886a25056c47d338251181e39ea008",
            code_install="path",
            imports=("models_xin",),
            location="the ParaCLAP checkpoint (best.pth.tar); its text model bert-base-uncased "
            "and audio model wav2vec2 resolve through the local Hugging Face cache",
        ),
        Recipe(
            family="pengi",
            handler="wk_pengi:PengiHandler",
            summary="Pengi, isolated worker (cuelab env create pengi)",
            kind=GENERATIVE,
            torch="2.0.1",
            python_max=(3, 11),  # torch 2.0.1 and numpy 1.23.5 stop at 3.11
            packages=(
                "torchaudio==2.0.2",
                "numpy==1.23.5",
                "transformers==4.30.0",
                "torchlibrosa==0.1.0",
                "librosa==0.10.0.post2",
                "pyyaml==6.0.1",
                "importlib_resources==5.12.0",
                "soundfile==0.12.1",
            ),
            code="git:https://github.com/microsoft/Pengi@636394c36be6e2bb5053601c910409a30057029c",
            code_install="path",
            imports=("wrapper", "models.pengi"),
            location="base.pth or base_no_text_enc.pth (with its .yml config beside it)",
            notes=(
                "Pengi's own pins (torch 2.0, torchaudio 2.0, transformers 4.30): its wrapper "
                "reads audio with torchaudio. No CPU torch 2.0.1 wheel lies on these machines, "
                "so the build needs PyTorch's CPU index or a GPU machine (not built here).",
            ),
        ),
        Recipe(
            family="ltu-as",
            handler="wk_ltuas:LtuAsHandler",
            summary="LTU-AS, isolated worker (cuelab env create ltu-as; free-text answers)",
            kind=GENERATIVE,
            torch=_TORCH,
            packages=(
                "numpy==1.26.4",
                "sentencepiece==0.2.0",
                "peft==0.3.0",
                "tokenizers==0.13.3",
                "whisper-at==0.5",
                "soundfile==0.13.1",
            ),
            code="git:https://github.com/YuanGongND/ltu@bd646a4ff924417dcc9fd16c53a806db4760c885",
            code_install="path",
            imports=("sentencepiece", "whisper_at"),
            location="the LTU-AS folder: the Vicuna/LLaMA-7B base in HF layout (vicuna_ltuas/), "
            "ltuas_long_noqa_a6.bin, and Whisper's large-v1.pt and large-v2.pt",
            python_max=(3, 11),
            notes=(
                "LTU-AS vendors a transformers 4.28 fork (src/ltu_as/hf-dev/transformers-main), a "
                "peft fork and an encoder-only Whisper; the handler puts them first on sys.path, "
                "so the pip peft and transformers only bring their dependencies (tokenizers pinned "
                "to 0.13.3, which 4.28 needs). The spoken text comes from whisper-at, as the "
                "release's inference_gradio.py does. Tested through a stub of these APIs, not on "
                "the real weights.",
            ),
        ),
        Recipe(
            family="kimi-audio",
            handler="wk_kimi:KimiAudioHandler",
            summary="Kimi-Audio, isolated worker (transformers 4.49 remote code)",
            kind=GENERATIVE,
            torch="2.11.0",
            packages=(
                "torchaudio==2.11.0",
                "numpy==1.26.4",
                "transformers==4.49.0",
                "librosa==0.10.2.post1",
                "soundfile==0.13.1",
                "tqdm",
                "loguru==0.7.3",
                "huggingface_hub<1",
                "conformer==0.3.2",
                "diffusers==0.32.2",
                "tiktoken==0.9.0",
                "timm==1.0.15",
                "torchdyn==1.0.6",
            ),
            code="git:https://github.com/MoonshotAI/Kimi-Audio@faedaac1a45aa5eacd0f466e02fb4ea1e4f56060",
            code_install="path",
            imports=("kimia_infer.api.kimia",),
            location="the Kimi-Audio-7B-Instruct folder",
            pickle=False,
            remote_code=True,
            notes=(
                "torch 2.11 with its torchaudio (the repository needs torchaudio, which has no "
                "build for torch 2.13). flash-attn is left out of the recipe (it compiles "
                "against the local CUDA); its inference code needs a CUDA GPU (not built here).",
            ),
        ),
        Recipe(
            family="step-audio-2-mini",
            handler="wk_stepaudio:StepAudio2Handler",
            summary="Step-Audio 2 mini, isolated worker (its own remote code)",
            kind=GENERATIVE,
            torch="2.11.0",
            packages=(
                "torchaudio==2.11.0",
                "numpy==1.26.4",
                "transformers==4.49.0",
                "librosa==0.10.2.post1",
                "onnxruntime==1.20.1",
                "s3tokenizer==0.2.0",
                "diffusers==0.32.2",
                "hyperpyyaml==1.2.2",
                "soundfile==0.13.1",
            ),
            code="git:https://github.com/stepfun-ai/Step-Audio2@c22bfade1579c55aa6cffbce40094fd5770b5331",
            code_install="path",
            imports=("stepaudio2",),
            location="the Step-Audio-2-mini folder (safetensors and its remote code)",
            pickle=False,
            remote_code=True,
            notes=(
                "The README's install line (transformers 4.49, torchaudio, librosa, onnxruntime, "
                "s3tokenizer, diffusers, hyperpyyaml) with torch 2.11 and its torchaudio. Needs "
                "--trust-remote-code: the release's modeling code runs (not built here).",
            ),
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
