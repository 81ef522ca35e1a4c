"""Tasks: what a model is asked, and how its answer is read.

``prompts`` (the emotion prompt templates), ``emotion`` (label sets, free
answer → label) and ``sseu`` (speech / scene / event sets, prompts, answers,
matching and scoring). Tasks sit above the models: their
:class:`~cuelab.core.tasks.prompts.TaskPrompt` renders the requests the adapters
answer (:mod:`cuelab.core.models.capabilities`), and they read the predictions.
"""

from __future__ import annotations
