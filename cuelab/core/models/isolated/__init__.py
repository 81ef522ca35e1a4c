"""Model families that run in their own environment, behind a worker process.

``recipes`` (pinned environment recipes), ``envs`` (``cuelab env create /
list / check``), ``worker/`` (the worker script, its JSON-lines ``protocol``
and the family handlers; run inside the family's environment, importing
nothing of CueLab), ``client`` (the worker process seen from CueLab: timeouts,
log, crash detection) and ``adapter`` (the adapters, one per kind; a family's
class is made from its recipe, so a new family is one recipe plus one handler).
"""

from __future__ import annotations
