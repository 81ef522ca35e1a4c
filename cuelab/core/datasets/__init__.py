"""Manifests (the one data contract for clips) and dataset importers."""

from __future__ import annotations

from cuelab.core.datasets.aibo import import_aibo
from cuelab.core.datasets.folders import import_folders
from cuelab.core.datasets.iemocap import import_iemocap
from cuelab.core.datasets.manifest import Manifest, ManifestRow, read_manifest

__all__ = [
    "Manifest",
    "ManifestRow",
    "import_aibo",
    "import_folders",
    "import_iemocap",
    "read_manifest",
]
