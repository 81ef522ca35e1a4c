"""CueLab: a workbench for studying how audio language models use acoustic cues."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
