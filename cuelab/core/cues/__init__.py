"""Acoustic cues: eGeMAPS features to concept tokens, and interventions on them.

``features`` (openSMILE eGeMAPS, cached), ``descriptors`` (which descriptors
make each concept), ``norms`` (the reference profile and robust
standardisation), ``voice_quality`` (the VOICE_QUALITY rules), ``concepts``
(scores and tokens of a clip), ``tokens`` (token sets and templates) and
``interventions`` (shuffle, conflict, corrupt, ablate, invert).
"""

from __future__ import annotations
