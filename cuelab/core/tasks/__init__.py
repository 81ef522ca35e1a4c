"""Tasks: what a model is asked, and how its answer is read.

``prompts`` (the emotion prompt templates), ``emotion`` (label sets, free
answer → label) and ``sseu`` (speech / scene / event sets, prompts, answers,
matching and scoring; ``answering`` and ``matchers``: how an SSEU clip is
answered and its free answers matched). Tasks sit above the models: their
:class:`~cuelab.core.tasks.prompts.TaskPrompt` renders the requests the adapters
answer (:mod:`cuelab.core.models.capabilities`), and they read the predictions.
``kind`` declares :class:`TaskKind`, what a task tells the run engine (below
``runs/``, so a kind names nothing of it).
"""

from __future__ import annotations

from cuelab.core.tasks.kind import KindPlan, TaskKind

__all__ = ["KindPlan", "TaskKind"]
