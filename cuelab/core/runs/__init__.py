"""Batch evaluation engine (see :mod:`cuelab.core.runner` for the public API).

``config`` (what a run does), ``plan`` (clips, tokens, variants), ``engine``
(execution and resume), ``record`` (run.json, predictions layout), ``csvio``
(spreadsheet-safe CSV), ``stats`` and ``plots`` (the report), ``merge``
(shards).
"""
