"""Lazy public faces for the core's packages (PEP 562).

A package's ``__init__`` names what the window and the command line may use
(``__all__``) and where each name lives; the defining module is imported on
first use, so importing a package's face costs nothing until a name is read
(``cuelab.core.models`` would otherwise pull in torch for a ``Clip``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_face(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``.

    ``names`` maps each public name to its module, or to ``module:attribute`` where the
    face gives a name of its own (two modules' ``families`` cannot share one name).
    """

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where.partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later reads skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(names))

    return __getattr__, __dir__
