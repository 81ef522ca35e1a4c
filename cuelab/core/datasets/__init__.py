"""Manifests (the one data contract for clips) and dataset importers."""

from __future__ import annotations

from cuelab.core.datasets.manifest import Manifest, ManifestRow, read_manifest

__all__ = ["Manifest", "ManifestRow", "read_manifest"]
