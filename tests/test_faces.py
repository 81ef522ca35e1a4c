"""Every core package has a public face, and the faces hold what they promise.

The window and the command line import only ``cuelab.core.<package>`` (the
"faces" contract in pyproject.toml, tested in test_layers.py). A face names
its public names in ``__all__`` and imports each one's module on first use, so
reading a face must give the very object its module defines, a face's name
must never be shadowed by a submodule of the same name, and importing a face
must not pull in torch.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import cuelab.core

PACKAGES = sorted(
    m.name
    for m in pkgutil.walk_packages(cuelab.core.__path__, "cuelab.core.")
    if m.ispkg and ".worker" not in m.name  # the isolated worker runs outside CueLab
)


def test_the_core_has_the_packages_the_faces_cover() -> None:
    assert {"cuelab.core.runs", "cuelab.core.models", "cuelab.core.cues"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_core_package_has_a_face_whose_names_resolve(name: str) -> None:
    package = importlib.import_module(name)
    public = getattr(package, "__all__", None)
    assert public, f"{name} has no __all__"
    assert len(set(public)) == len(public), f"{name}: a name listed twice"
    for attr in public:
        value = getattr(package, attr)  # imports the defining module on first use
        assert value is not None, f"{name}.{attr}"
        assert attr in dir(package)


@pytest.mark.parametrize("name", PACKAGES)
def test_no_face_name_is_shadowed_by_a_submodule(name: str) -> None:
    package = importlib.import_module(name)
    subs = {m.name for m in pkgutil.iter_modules(package.__path__)}
    clash = sorted(set(package.__all__) & subs)
    # ``from package import X`` would give the module X once it has been imported
    assert not clash, f"{name}: {clash} are both public names and submodules"


def test_a_face_gives_the_defining_modules_object() -> None:
    from cuelab.core import runs
    from cuelab.core.runs.folder import RunFolder

    assert runs.RunFolder is RunFolder
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = runs.nothing_here  # type: ignore[attr-defined]


def test_importing_the_faces_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "from cuelab.core import audio, cues, datasets, metrics, models, reports, runs, tasks\n"
        "from cuelab.core.models import Clip, families\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == ["False", "False"]
