"""Where CueLab's bundled assets live.

The demo corpus, backgrounds, norms profile, prompt templates, reference
model and icons ship inside the package (``cuelab/assets``), so an installed
wheel finds them exactly as a source checkout does. ``CUELAB_ASSETS`` points
somewhere else (e.g. a folder of edited prompt templates).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ASSETS = Path(__file__).resolve().parents[1] / "assets"


def assets_dir() -> Path:
    """The assets folder: ``$CUELAB_ASSETS`` when set, else the packaged one."""
    env = os.environ.get("CUELAB_ASSETS")
    return Path(env) if env else PACKAGE_ASSETS


#: Resolved once at import; modules that need a live override call assets_dir().
ASSETS = assets_dir()
