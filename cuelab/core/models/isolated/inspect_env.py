"""Looking inside a built environment: its marker file and whether its modules import.

Both are read without trusting what is on disk: the marker through the safe
reader (a FIFO or a device in its place never blocks) with the true reason
when it is damaged, the imports in a child process of the environment's own
Python.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cuelab.core.errors import ModelError
from cuelab.core.safeio import decode_input, read_input

log = logging.getLogger(__name__)

#: The file a finished build writes in the environment (recipe hash, Python, packages).
MARKER = "cuelab-env.json"


def read_marker(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """``(marker, "")``, ``(None, "")`` when there is none, or ``(None, why it is damaged)``.

    Read with the safe reader: a FIFO or a device in its place never blocks.
    """
    path = folder / MARKER
    if not path.exists() and not path.is_symlink():
        return None, ""
    try:
        text = decode_input(read_input(path, MARKER, ModelError, 1 << 24), path, MARKER, ModelError)
    except ModelError as exc:
        return None, " ".join(str(exc).split())
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"{path} is damaged: not valid JSON ({' '.join(str(exc).split())[:120]})"
    except RecursionError:
        return None, f"{path} is damaged: nested too deeply"
    if not isinstance(data, dict):
        return None, f"{path} is damaged: not a JSON object"
    if not isinstance(data.get("packages", {}), dict):
        return None, f"{path} is damaged: 'packages' is not a JSON object"
    data.setdefault("packages", {})
    return data, ""


def import_problem(python: Path, modules: Sequence[str]) -> str:
    """ "" when every module imports inside the environment, else one line saying which not."""
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        print('%s does not import: %s: %s' % (name, type(exc).__name__, exc))\n"
        "        sys.exit(1)\n"
    )
    code = _STUB_PARENTS + code
    try:
        proc = subprocess.run(
            [str(python), "-E", "-s", "-c", code, *modules],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"its Python cannot run: {exc}"
    if proc.returncode != 0:
        log.info("import check in %s:\n%s", python, proc.stderr)
        line = (proc.stdout.strip().splitlines() or ["its Python failed"])[-1]
        return " ".join(line.split())[:300]
    return ""


#: Runs before the import check. ``msclap/__init__`` imports torchaudio (no build for torch
#: 2.13) and ``laion_clap/__init__`` loads tokenizers from the hub cache: their model
#: subpackages are imported without running the package ``__init__`` (the workers do the
#: same). torchvision's CUDA wheels on a CPU torch: its fake-kernel registrations are
#: skipped, as the LAION-CLAP worker does (``wk_laionclap.prepare_torchvision``).
_STUB_PARENTS = (
    "import importlib.util, sys, types\n"
    "for name in ('msclap', 'laion_clap'):\n"
    "    spec = importlib.util.find_spec(name)\n"
    "    if spec is not None and spec.submodule_search_locations:\n"
    "        pkg = types.ModuleType(name)\n"
    "        pkg.__path__ = list(spec.submodule_search_locations)\n"
    "        sys.modules[name] = pkg\n"
    "try:\n"
    "    import torchvision\n"
    "except RuntimeError:\n"
    "    for n in [n for n in sys.modules if n.split('.')[0] == 'torchvision']:\n"
    "        del sys.modules[n]\n"
    "    sys.modules['torchvision._meta_registrations'] = types.ModuleType('m')\n"
    "except ImportError:\n"
    "    pass\n"
)
