"""Finding, checking and loading transformers checkpoints safely and offline.

Every refusal here happens *before* any weight is read: a missing folder or
uncached hub id, a checkpoint that wants to run its own code, pickle-only
weights, or a model that will not fit in free memory. Each is one line that
says what is wrong and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuelab.core import errors
from cuelab.core.errors import ModelError
from cuelab.core.models.base import DEVICE_CHOICES, QUANT_CHOICES, LoadOptions

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_QUANT_BYTES = {"nf4": 0.5 + 1 / 32, "8bit": 1.0 + 1 / 64}
_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
# Room kept free beyond the weights: activations, KV cache, the CUDA context.
MEMORY_HEADROOM = 1.15


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint folder and where it came from."""

    folder: Path
    location: str
    revision: str | None
    digest: str


def resolve_location(location: str, options: LoadOptions) -> Checkpoint:
    """Turn a folder path or a hub id into a local folder, offline by default.

    Raises:
        ModelError: the folder does not exist, or the hub id is not in the local cache
            (the message says how to fetch it on a machine with internet).
    """
    path = Path(location).expanduser()
    if path.is_dir():
        folder = path.resolve()
        return Checkpoint(folder, location, None, folder_digest(folder))
    if not _HUB_ID.match(location) or path.is_absolute() or location.startswith("."):
        raise ModelError(f"model folder {location} does not exist")
    folder = _from_hub_cache(location, options)
    revision = folder.name if folder.parent.name == "snapshots" else None
    return Checkpoint(folder, location, revision, folder_digest(folder))


def _from_hub_cache(repo_id: str, options: LoadOptions) -> Path:
    from huggingface_hub import snapshot_download

    offline = options.local_files_only or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    options.progress(f"looking up {repo_id} in the local Hugging Face cache")
    try:
        return Path(snapshot_download(repo_id, local_files_only=offline))
    except Exception as exc:
        if offline:
            raise ModelError(
                f"model {repo_id} is not in the local Hugging Face cache (offline mode); "
                f"on a machine with internet run `hf download {repo_id}` "
                "and copy the cache here, or pass a local folder"
            ) from exc
        raise ModelError(f"model {repo_id} cannot be downloaded: {exc}") from exc


def folder_digest(folder: Path) -> str:
    """A cheap fingerprint of a checkpoint: config text plus weight file names and sizes.

    Sub-folders count too (AF3's ``think/`` adapter is part of what a think-mode run
    used); hidden ones (``.cache``, ``.git``) do not.
    """
    digest = hashlib.sha256()
    items = [p for p in folder.rglob("*") if not any(part.startswith(".") for part in
             p.relative_to(folder).parts)]  # fmt: skip
    for item in sorted(items):
        if item.is_file():
            digest.update(item.relative_to(folder).as_posix().encode("utf-8"))
            digest.update(str(item.stat().st_size).encode("ascii"))
            if item.suffix == ".json" and item.stat().st_size < 1_000_000:
                digest.update(item.read_bytes())
    return digest.hexdigest()[:16]


def read_config(folder: Path) -> dict[str, Any]:
    """Return ``config.json`` as a dict, or raise a one-line ModelError."""
    path = folder / "config.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise ModelError(f"model folder {folder} has no config.json") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"model config {path} cannot be read: {exc}") from exc


#: config.json ``model_type`` -> the CueLab family that loads it.
MODEL_TYPE_FAMILIES = {
    "qwen2_audio": "qwen2-audio",
    "qwen2_5_omni": "qwen2.5-omni",
    "qwen2_5_omni_thinker": "qwen2.5-omni",
    "audioflamingo3": "audio-flamingo-3",
    "clap": "clap",
}
#: Families whose folders say what they are in config.json.
CONFIG_FAMILIES = (*sorted(set(MODEL_TYPE_FAMILIES.values())), "reference")


def detect_family(folder: Path) -> tuple[str | None, str]:
    """The family a checkpoint folder is, from its config.json, and what says so.

    Returns ``(None, "")`` when there is no readable config.json, and ``(None, what)``
    for a model type no CueLab family loads.
    """
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, ""
    if not isinstance(config, dict):
        return None, ""
    if config.get("format") == "cuelab-reference":
        return "reference", "config.json format 'cuelab-reference'"
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        return None, ""
    return MODEL_TYPE_FAMILIES.get(model_type), f"config.json model_type '{model_type[:40]}'"


def check_family(folder: Path, family: str, shown: str | None = None) -> None:
    """Refuse, in one line that names the right SPEC, a folder of another family.

    Without this a Qwen2-Audio folder loaded as Omni fails deep inside transformers
    (``AttributeError: n_window``) and a CLAP folder loaded as Qwen2-Audio prints every
    config class transformers knows.
    """
    if family not in CONFIG_FAMILIES:
        return
    found, what = detect_family(folder)
    if found == family or not what:
        return
    name = shown or str(folder)  # a hub id is named as the user wrote it
    kind = "model" if shown else "model folder"
    if found is not None:
        raise ModelError(
            f"{kind} {name} is a {found} checkpoint ({what}), not {family}",
            subject=name,
            remedy=errors.model_spec(f"{found}:{name}"),
        )
    known = ", ".join(sorted(MODEL_TYPE_FAMILIES))
    raise ModelError(
        f"{kind} {name} holds a model no CueLab family loads ({what}); the in-process "
        f"families load model types {known} (cuelab list families)"
    )


def cached_config_folder(repo_id: str) -> Path | None:
    """The local snapshot folder holding ``repo_id``'s config.json, or None (never a download)."""
    if not _HUB_ID.match(repo_id):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def check_safety(folder: Path, options: LoadOptions) -> None:
    """Refuse remote code and pickle weights unless the user allowed them explicitly.

    Raises:
        ModelError: the config has ``auto_map`` without ``trust_remote_code``, or the only
            weights are pickle files without ``allow_pickle``, or there are no weights.
    """
    config = read_config(folder)
    if "auto_map" in config and not options.trust_remote_code:
        raise ModelError(
            f"model {folder} asks to run its own Python code (auto_map in config.json); "
            "CueLab never runs it implicitly",
            subject=folder,
            remedy=errors.TRUST_REMOTE_CODE,
        )
    names = [p.name for p in folder.iterdir() if p.is_file()]
    if any(name.endswith(".safetensors") for name in names):
        return
    pickles = [name for name in names if name.endswith(_PICKLE_SUFFIXES)]
    if pickles and not options.allow_pickle:
        raise ModelError(
            f"model {folder} has only pickle weights ({pickles[0]}), which can run code when "
            "loaded",
            subject=folder,
            remedy=errors.ALLOW_PICKLE,
        )
    if not pickles:
        raise ModelError(f"model folder {folder} has no weights (*.safetensors)")


def resolve_device(device: str) -> str:
    """Return ``cuda`` or ``cpu`` for a device choice, checking that a GPU exists."""
    import torch

    if device not in DEVICE_CHOICES:
        raise ModelError(f"unknown device {device!r} (choose {', '.join(DEVICE_CHOICES)})")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            "device cuda was asked for but no CUDA GPU is available", remedy=errors.DEVICE_CPU
        )
    return device


def resolve_quant(quant: str, device: str) -> str:
    """Return a concrete precision: ``auto`` is bf16 on a GPU and fp32 on a CPU."""
    if quant not in QUANT_CHOICES:
        raise ModelError(f"unknown quantisation {quant!r} (choose {', '.join(QUANT_CHOICES)})")
    if quant == "auto":
        return "bf16" if device == "cuda" else "fp32"
    return quant


def torch_dtype(quant: str) -> Any:
    """The floating dtype of unquantised weights for a precision choice."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16}.get(quant, torch.bfloat16)


def quantization_config(quant: str, skip_modules: Sequence[str]) -> Any:
    """A BitsAndBytesConfig for nf4/8bit (None otherwise) that keeps ``skip_modules`` intact.

    A custom skip list replaces the default one, which only held ``lm_head``, so the callers'
    lists name ``lm_head`` themselves.
    """
    if quant not in _QUANT_BYTES:
        return None
    from transformers import BitsAndBytesConfig

    if quant == "nf4":
        import torch

        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=False,
            llm_int8_skip_modules=list(skip_modules),
        )
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(skip_modules))


def _is_skipped(name: str, skip_modules: Sequence[str]) -> bool:
    return any(
        name == s or name.startswith(s + ".") or name.endswith("." + s) for s in skip_modules
    )


def estimate_bytes(model_class: Any, config: Any, quant: str, skip_modules: Sequence[str]) -> int:
    """Weight memory of ``model_class(config)`` at ``quant``, counted on the meta device."""
    import torch
    from torch import nn

    with torch.device("meta"):
        model = model_class(config)
    unit = _DTYPE_BYTES.get(quant, 2)
    total = 0.0
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        count = sum(p.numel() for p in own)
        quantised = (
            quant in _QUANT_BYTES
            and isinstance(module, nn.Linear)
            and not _is_skipped(name, skip_modules)
        )
        total += count * (_QUANT_BYTES[quant] if quantised else unit)
    return int(total)


def free_bytes(device: str) -> int:
    """Free memory on ``device``: the GPU's free memory, or available RAM on a CPU."""
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_fits(needed: int, device: str, what: str) -> None:
    """Raise a ModelError before loading when ``needed`` bytes will not fit on ``device``."""
    free = free_bytes(device)
    if needed * MEMORY_HEADROOM > free:
        gib = 1024**3
        raise ModelError(
            f"{what} needs about {needed / gib:.1f} GiB on {device} but only "
            f"{free / gib:.1f} GiB is free",
            subject=what,
            remedy=errors.QUANTIZE,
        )


def load_pretrained(
    model_class: Any,
    checkpoint: Checkpoint,
    options: LoadOptions,
    skip_modules: Sequence[str],
    select_config: Callable[[Any], Any] | None = None,
) -> tuple[Any, str, str]:
    """Check, estimate and load a model; return ``(model, device, quant)``.

    ``select_config`` picks the sub-config to build (the Omni thinker's from a full
    Omni config).

    Raises:
        ModelError: any refusal from :func:`check_safety`, a model that does not fit, or an
            out-of-memory error while loading.
    """
    import torch
    from transformers import AutoConfig

    folder = checkpoint.folder
    check_safety(folder, options)
    device = resolve_device(options.device)
    quant = resolve_quant(options.quant, device)
    options.progress(f"reading the config of {checkpoint.location}")
    try:
        config = AutoConfig.from_pretrained(
            folder, trust_remote_code=options.trust_remote_code, local_files_only=True
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"model config of {checkpoint.location} cannot be read: {exc}") from exc
    if select_config is not None:
        config = select_config(config)
    options.progress("estimating memory")
    needed = estimate_bytes(model_class, config, quant, skip_modules)
    check_fits(needed, device, f"model {checkpoint.location} at {quant}")
    options.progress(f"loading weights ({needed / 1024**3:.2f} GiB, {quant}, {device})")
    kwargs: dict[str, Any] = {
        "config": config,
        "dtype": torch_dtype(quant),
        "device_map": device,
        "local_files_only": True,
        "trust_remote_code": options.trust_remote_code,
        "use_safetensors": None if options.allow_pickle else True,
    }
    bnb = quantization_config(quant, skip_modules)
    if bnb is not None:
        kwargs["quantization_config"] = bnb
    try:
        model = model_class.from_pretrained(folder, **kwargs)
    except torch.OutOfMemoryError as exc:
        raise ModelError(
            f"out of memory while loading {checkpoint.location} at {quant} on {device}",
            subject=checkpoint.location,
            remedy=errors.QUANTIZE,
        ) from exc
    except MemoryError as exc:
        raise ModelError(f"out of memory while loading {checkpoint.location} on {device}") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"model {checkpoint.location} cannot be loaded: {exc}") from exc
    model.eval()
    options.progress("model ready")
    return model, device, quant
