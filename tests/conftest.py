"""Shared test set-up: offscreen Qt, private caches and logs, offline hubs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_TMP = Path(tempfile.mkdtemp(prefix="cuelab-tests-"))
os.environ.setdefault("CUELAB_CACHE_DIR", str(_TMP / "cache"))
os.environ.setdefault("CUELAB_LOG_DIR", str(_TMP / "logs"))
os.environ.setdefault("XDG_DATA_HOME", str(_TMP / "data"))  # the demo's annotation copy

REPO = Path(__file__).resolve().parents[1]
