"""Tasks: what a model is asked, and how its answer is read.

``prompts`` (the emotion prompt templates), ``emotion`` (label sets, free
answer → label) and ``sseu`` (speech / scene / event sets, prompts, answers,
matching and scoring). Tasks sit above the models: they fill the adapters'
:class:`~cuelab.core.models.base.TaskPrompt` and read their predictions.
"""

from __future__ import annotations
