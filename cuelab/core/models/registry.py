"""Model families by name, imported on first use.

Entries are ``"module:Class"`` strings so that listing the families (for a
menu or ``--help``) never imports torch; the adapter module is imported only
when a model of that family is loaded.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from cuelab.core.errors import ModelError
from cuelab.core.models.base import LoadOptions, ModelAdapter
from cuelab.core.models.isolated.recipes import families as isolated_families
from cuelab.core.models.loading import CONFIG_FAMILIES, cached_config_folder, check_family
from cuelab.core.paths import assets_dir

#: The in-process families; the isolated ones come from their recipes (see REGISTRY).
BUILTIN: dict[str, str] = {
    "qwen2-audio": "cuelab.core.models.qwen2_audio:Qwen2AudioAdapter",
    "qwen2.5-omni": "cuelab.core.models.qwen_omni:QwenOmniThinkerAdapter",
    "audio-flamingo-3": "cuelab.core.models.flamingo:AudioFlamingo3Adapter",
    "clap": "cuelab.core.models.clap:ClapAdapter",
    "reference": "cuelab.core.models.reference:ReferenceAdapter",
    "oracle": "cuelab.core.models.oracle:OracleAdapter",
    "openai": "cuelab.core.models.remote.adapter:OpenAIAdapter",
}

#: Where an isolated family's adapter is made from its recipe.
ISOLATED_FACTORY = "cuelab.core.models.isolated.adapter:adapter_class"


class _Registry(Mapping[str, str]):
    """Family name -> entry: the built-in ``module:Class`` strings, then one
    ``module:adapter_class(FAMILY)`` entry per isolated recipe (a worker in the family's
    own environment, ``cuelab env create FAMILY``), read when asked so that a new recipe
    is a new family everywhere."""

    def _entries(self) -> dict[str, str]:
        isolated = {f: f"{ISOLATED_FACTORY}({f})" for f in isolated_families()}
        return {**BUILTIN, **isolated}

    def __getitem__(self, family: str) -> str:
        return self._entries()[family]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())


REGISTRY: Mapping[str, str] = _Registry()

# The shipped reference model, used when a SPEC is the bare word ``reference``.
DEMO_REFERENCE = assets_dir() / "models" / "demo-reference"


def families() -> list[str]:
    """Return the registered family names, sorted."""
    return sorted(REGISTRY)


def _unknown_family(family: str) -> ModelError:
    close = difflib.get_close_matches(family, REGISTRY, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ModelError(f"unknown model family {family!r}{hint} (known: {', '.join(families())})")


def get_adapter_class(family: str) -> type[ModelAdapter]:
    """Import and return the adapter class registered under ``family``.

    Raises:
        ModelError: the name is not registered (with a "did you mean"), or its module
            cannot be imported.
    """
    entry = REGISTRY.get(family)
    if entry is None:
        raise _unknown_family(family)
    if entry.startswith(f"{ISOLATED_FACTORY}("):
        from cuelab.core.models.isolated.adapter import adapter_class

        return adapter_class(family)
    module_name, _, class_name = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"model family {family!r} cannot be imported: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
        raise ModelError(f"registry entry {entry!r} is not a ModelAdapter subclass")
    return cls


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``family:location`` into its parts.

    A bare ``reference`` means the shipped demo reference model, a bare ``oracle``
    the oracle (``oracle:-``). The split is at the
    first colon, so locations may contain colons (``C:\\models``) but family names may not.

    Raises:
        ModelError: the spec has no location, or names an unknown family.
    """
    spec = spec.strip()
    if spec == "reference":
        return "reference", str(DEMO_REFERENCE)
    if spec == "oracle":  # the oracle has no weights: any location will do
        return "oracle", "-"
    family, sep, location = spec.partition(":")
    family = family.strip().lower()
    if not sep or not location.strip():
        if family in REGISTRY:
            raise ModelError(
                f"model spec {spec!r} has no location; write {family}:FOLDER or {family}:HUB_ID"
            )
        raise ModelError(
            f"model spec {spec!r} is not family:location (families: {', '.join(families())})"
        )
    if family not in REGISTRY:
        raise _unknown_family(family)
    return family, location.strip()


def load_model(spec: str, options: LoadOptions | None = None) -> ModelAdapter:
    """Load the model named by ``spec`` (``family:location``) with ``options``."""
    family, location = parse_spec(spec)
    folder = Path(location).expanduser()
    if folder.is_dir():
        check_family(folder.resolve(), family)  # the wrong family fails here, in one line
    elif family in CONFIG_FAMILIES and not folder.is_absolute():
        cached = cached_config_folder(location)  # a hub id already in the local cache
        if cached is not None:
            check_family(cached, family, shown=location)
    cls = get_adapter_class(family)
    try:
        return cls.load(location, options or LoadOptions())
    except ImportError as exc:  # a backend imported lazily on first load is missing
        missing = exc.name or str(exc)
        raise ModelError(
            f"model family {family!r} needs the Python package {missing!r}, which is not "
            f"installed (pip install {missing.split('.')[0]})"
        ) from exc
