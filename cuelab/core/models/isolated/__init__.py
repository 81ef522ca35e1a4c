"""Model families that run in their own environment, behind a worker process.

``recipes`` (pinned environment recipes), ``envs`` (``cuelab env create /
list / check``), ``worker/`` (the worker script, its JSON-lines ``protocol``
and the family handlers; run inside the family's environment, importing
nothing of CueLab), ``client`` (the worker process seen from CueLab: timeouts,
log, crash detection) and ``adapter`` (the adapters, one per kind; a family's
class is made from its recipe, so a new family is one recipe plus one handler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cuelab.core._faces import lazy_face

if TYPE_CHECKING:
    from cuelab.core.models.isolated.adapter import WorkerAdapter, adapter_class, check_safety
    from cuelab.core.models.isolated.client import WORKER_ENV_ALLOWED, WorkerCrashed, WorkerProcess
    from cuelab.core.models.isolated.envs import (
        EnvStatus,
        adopt,
        create_env,
        env_python,
        env_status,
        envs_root,
        require_ready,
    )
    from cuelab.core.models.isolated.recipes import RECIPES, Recipe, families, get_recipe

# The public face: each name's module is imported on first use.
_LAZY = {
    "EnvStatus": "cuelab.core.models.isolated.envs",
    "RECIPES": "cuelab.core.models.isolated.recipes",
    "Recipe": "cuelab.core.models.isolated.recipes",
    "WORKER_ENV_ALLOWED": "cuelab.core.models.isolated.client",
    "WorkerAdapter": "cuelab.core.models.isolated.adapter",
    "WorkerCrashed": "cuelab.core.models.isolated.client",
    "WorkerProcess": "cuelab.core.models.isolated.client",
    "adapter_class": "cuelab.core.models.isolated.adapter",
    "adopt": "cuelab.core.models.isolated.envs",
    "check_safety": "cuelab.core.models.isolated.adapter",
    "create_env": "cuelab.core.models.isolated.envs",
    "env_python": "cuelab.core.models.isolated.envs",
    "env_status": "cuelab.core.models.isolated.envs",
    "envs_root": "cuelab.core.models.isolated.envs",
    "families": "cuelab.core.models.isolated.recipes",
    "get_recipe": "cuelab.core.models.isolated.recipes",
    "require_ready": "cuelab.core.models.isolated.envs",
}
__getattr__, __dir__ = lazy_face(__name__, _LAZY)

__all__ = [
    "RECIPES",
    "WORKER_ENV_ALLOWED",
    "EnvStatus",
    "Recipe",
    "WorkerAdapter",
    "WorkerCrashed",
    "WorkerProcess",
    "adapter_class",
    "adopt",
    "check_safety",
    "create_env",
    "env_python",
    "env_status",
    "envs_root",
    "families",
    "get_recipe",
    "require_ready",
]
