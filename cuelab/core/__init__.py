"""CueLab's engine, one folder per stage a clip passes through.

audio → cues → models → tasks → runs → reports, with datasets and metrics
beside audio and the shared errors, safeio, paths and jobs below them all.
Each stage imports only the ones before it, there are no import cycles, and
nothing here imports Qt (the contracts in ``pyproject.toml``, checked by
``tests/test_layers.py``), so the same code serves the command line, the
window and outside scripts.
"""

from __future__ import annotations
