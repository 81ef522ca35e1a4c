"""CueLab engine: audio, features, concept tokens, models, runs.

Nothing in this package imports Qt (``tests/core/test_boundaries.py`` enforces it),
so the same code serves the command line, the window and outside scripts.
"""

from __future__ import annotations
