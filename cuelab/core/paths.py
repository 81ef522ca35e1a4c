"""Where CueLab's bundled assets live.

The demo corpus, backgrounds, norms profile, prompt templates, reference
model and icons sit in ``assets/`` at the top of the repository. The wheel
maps that folder to ``cuelab/assets`` (hatchling ``force-include`` in
``pyproject.toml``) and the frozen app carries it to the same place, so an
installed copy finds it inside the package and a source checkout (editable
install included) finds it beside the package. ``CUELAB_ASSETS`` points
somewhere else (e.g. a folder of edited prompt templates).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]

#: Inside an installed wheel or a frozen app: ``cuelab/assets``.
PACKAGE_ASSETS = _PACKAGE / "assets"
#: In a source checkout: ``assets/`` at the repository's top level.
CHECKOUT_ASSETS = _PACKAGE.parent / "assets"


def bundled_assets() -> Path:
    """The assets that came with this copy of CueLab (installed first, then checkout)."""
    return PACKAGE_ASSETS if PACKAGE_ASSETS.is_dir() else CHECKOUT_ASSETS


def assets_dir() -> Path:
    """The assets folder: ``$CUELAB_ASSETS`` when set, else the bundled one."""
    env = os.environ.get("CUELAB_ASSETS")
    return Path(env) if env else bundled_assets()


#: Resolved once at import; modules that need a live override call assets_dir().
ASSETS = assets_dir()
